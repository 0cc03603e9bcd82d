"""Keep the model as it was every N epochs (an addition: Pylearn2 had no such extension).

A curve of a slow measurement, such as the importance-sampled NLL, against
training time needs the models along the way; ``Train.save_freq`` writes
them all to one path, each over the last.
"""

from __future__ import annotations

from pylearn_vae import persistence
from pylearn_vae.train_extensions import TrainExtension
from pylearn_vae.utils import check_positive_int

__all__ = ["EpochSnapshots"]

PLACEHOLDER = "{epoch}"


class EpochSnapshots(TrainExtension):
    """Save the model after every ``every`` epochs to ``save_path`` with
    ``{epoch}`` replaced by the number of epochs seen.

    Parameters
    ----------
    save_path : str
        A path containing ``{epoch}``, e.g.
        ``"${PYLEARN2_TRAIN_FILE_FULL_STEM}_epoch{epoch}.h5"``. Files are
        written atomically; a resumed run writes the same files again.
    every : int
        Epochs between snapshots (the first is after ``every`` epochs).
    """

    def __init__(self, save_path: str, every: int) -> None:
        if not isinstance(save_path, str) or PLACEHOLDER not in save_path:
            raise ValueError(
                f"EpochSnapshots: save_path must contain {PLACEHOLDER} (each snapshot needs "
                f"its own file), got {save_path!r}"
            )
        persistence.check_model_path(save_path, "EpochSnapshots: save_path")
        self.save_path = save_path
        self.every = check_positive_int(every, "EpochSnapshots: every")

    def path_for(self, epoch: int) -> str:
        """The file of the snapshot after ``epoch`` epochs."""
        return self.save_path.replace(PLACEHOLDER, str(epoch))

    def on_monitor(self, model, dataset, algorithm) -> None:
        epoch = model.monitor.get_epochs_seen()
        if epoch and epoch % self.every == 0:
            persistence.save(self.path_for(epoch), model)
