"""Train extensions: hooks called by ``Train`` around monitoring."""

from __future__ import annotations

__all__ = ["TrainExtension"]


class TrainExtension:
    """Base class of extensions. Override the hooks you need."""

    def use_config_text(self, text: str) -> None:
        """Called before :meth:`setup` with the YAML text the run was built from,
        when it is known (runs of :class:`~pylearn_vae.job.TrainingJob`)."""

    def setup(self, model, dataset, algorithm) -> None:
        """Called once before training starts."""

    def on_monitor(self, model, dataset, algorithm) -> None:
        """Called after every monitoring step (including the one before training)."""

    def on_save(self, model, dataset, algorithm) -> None:
        """Called just before the model is saved."""

    def close(self) -> None:
        """Called when the main loop ends, however it ends (release files, threads)."""
