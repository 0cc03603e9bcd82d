"""EpochSnapshots: which epochs it saves, and the settings it refuses."""

from types import SimpleNamespace

import pytest

from pylearn_vae.train_extensions import snapshots
from pylearn_vae.train_extensions.snapshots import EpochSnapshots


class _Monitor:
    def __init__(self):
        self.epochs = 0

    def get_epochs_seen(self):
        return self.epochs


def test_saves_after_every_nth_epoch_to_its_own_file(monkeypatch):
    saved = []
    monkeypatch.setattr(snapshots.persistence, "save", lambda path, model: saved.append(path))
    extension = EpochSnapshots("run/{epoch}/model_e{epoch}.h5", every=3)
    model = SimpleNamespace(monitor=_Monitor())
    for epoch in range(10):  # the monitoring before training, then 9 epochs
        model.monitor.epochs = epoch
        extension.on_monitor(model, None, None)
    assert saved == ["run/3/model_e3.h5", "run/6/model_e6.h5", "run/9/model_e9.h5"]


@pytest.mark.parametrize(
    "save_path, every, message",
    [
        ("model.h5", 5, "save_path must contain {epoch}"),
        (None, 5, "save_path must contain {epoch}"),
        ("model_{epoch}.h5", 0, "every must be a positive integer, got 0"),
        ("model_{epoch}.h5", 2.5, "every must be a positive integer, got 2.5"),
    ],
)
def test_refuses_settings_that_would_overwrite_or_never_save(save_path, every, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        EpochSnapshots(save_path, every)
