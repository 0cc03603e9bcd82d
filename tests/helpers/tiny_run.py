"""A tiny training run on random data, and its monitor's records as curves.

The run trains a 16-3 VAE for a few epochs on 200 random binary vectors (no
MNIST, a second or two after the compile): the TensorBoard tests train it and
compare what TensorBoard reads or serves with :func:`monitor_curves`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The training YAML, with ``%(epochs)d``, ``%(examples)d``,
#: ``%(algorithm_extra)s`` (more keys of the SGD) and ``%(extensions)s`` to fill
#: in (:func:`tiny_yaml`); the model is saved next to the YAML.
TINY_YAML = """\
!obj:pylearn_vae.train.Train {
    dataset: &train !obj:pylearn_vae.testing.datasets.random_binary_design_matrix {
        rng: 3, num_examples: %(examples)d, dim: 16 },
    model: !obj:pylearn_vae.models.vae.VAE {
        nvis: 16, nhid: 3, seed: 2,
        prior: !obj:pylearn_vae.models.vae.prior.DiagonalGaussianPrior {},
        conditional: !obj:pylearn_vae.models.vae.conditional.BernoulliVector {
            name: 'conditional',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.Tanh { layer_name: 'h', dim: 8, irange: 0.1 } ] } },
        posterior: !obj:pylearn_vae.models.vae.conditional.DiagonalGaussian {
            name: 'posterior',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.Tanh { layer_name: 'h', dim: 8, irange: 0.1 } ] } },
    },
    algorithm: !obj:pylearn_vae.training_algorithms.sgd.SGD {
        batch_size: 50, learning_rate: 0.05,
        learning_rule: !obj:pylearn_vae.training_algorithms.learning_rule.Momentum {
            init_momentum: 0.5 },
        monitoring_dataset: { 'train': *train },
        cost: !obj:pylearn_vae.costs.vae.VAECriterion {},
        termination_criterion: !obj:pylearn_vae.termination_criteria.EpochCounter {
            max_epochs: %(epochs)d },%(algorithm_extra)s
    },
    extensions: %(extensions)s,
    save_path: '${PYLEARN2_TRAIN_FILE_FULL_STEM}.pkl',
}
"""


def tiny_yaml(epochs: int, extensions: str = "[]", examples: int = 200, algorithm_extra: str = ""):
    """:data:`TINY_YAML` filled in (``algorithm_extra``: lines of more SGD keys)."""
    return TINY_YAML % {
        "epochs": epochs,
        "examples": examples,
        "algorithm_extra": algorithm_extra,
        "extensions": extensions,
    }


def write_tiny_config(folder: Path, epochs: int, extensions: str = "[]") -> Path:
    """Write :func:`tiny_yaml` as ``folder/run.yaml`` (creating ``folder``) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.yaml"
    path.write_text(tiny_yaml(epochs, extensions), encoding="utf-8")
    return path


def monitor_curves(model) -> dict[str, list[tuple[int, float]]]:
    """Every channel of ``model``'s monitor as (epochs seen, value as float32) pairs,
    as TensorBoard stores its scalars."""
    return {
        name: [
            (int(epoch), float(np.float32(value)))
            for epoch, value in zip(channel.epoch_record, channel.val_record, strict=True)
        ]
        for name, channel in model.monitor.channels.items()
    }


def stopped_after_epoch(config: Path, epochs: int, **job) -> None:
    """Run ``TrainingJob(config, quiet=True, **job)`` and stop it (as SIGTERM
    does) once ``epochs`` epochs are done; its checkpoint is then of that epoch."""
    import pytest

    from pylearn_vae.errors import StopRequested
    from pylearn_vae.job import TrainingJob

    def stop(train) -> None:
        if train.model.monitor.get_epochs_seen() == epochs:
            train.request_stop("SIGTERM")

    with pytest.raises(StopRequested):
        TrainingJob(config, quiet=True, **job).run(on_epoch=stop)


def killed_after_epoch_two(config: Path, **job) -> None:
    """Run ``TrainingJob(config, quiet=True, **job)`` until a stop after epoch 2,
    then put back its checkpoint of epoch 1: as after a kill between epoch 2's
    records and its checkpoint (or with ``--checkpoint-every 2``), the
    trackers hold a step the checkpoint does not."""
    import shutil

    import pytest

    from pylearn_vae.errors import StopRequested
    from pylearn_vae.job import TrainingJob

    checkpoint = config.parent / "run_checkpoint.h5"
    kept = config.parent / "epoch1_checkpoint.h5.kept"

    def stop_after_two(train) -> None:
        epochs = train.model.monitor.get_epochs_seen()
        if epochs == 1:
            shutil.copy(checkpoint, kept)
        if epochs == 2:
            train.request_stop("SIGTERM")

    with pytest.raises(StopRequested):
        TrainingJob(config, quiet=True, **job).run(on_epoch=stop_after_two)
    shutil.move(kept, checkpoint)
