"""Train extensions: hooks called by ``Train`` around monitoring."""

from __future__ import annotations

__all__ = ["TrainExtension", "tracker_keys"]


class TrainExtension:
    """Base class of extensions. Override the hooks you need."""

    def use_train(self, train) -> None:
        """Called before the training algorithm's setup (before anything
        compiles) with the :class:`~pylearn_vae.train.Train` that runs the extension: its ``config_text`` (the YAML the run was
        built from, when known), ``checkpoint_path``, ``save_path`` and
        ``extensions``."""

    def setup(self, model, dataset, algorithm) -> None:
        """Called once before training starts."""

    def on_monitor(self, model, dataset, algorithm) -> None:
        """Called after every monitoring step (including the one before training)."""

    def on_save(self, model, dataset, algorithm) -> None:
        """Called just before the model is saved."""

    def shown_values(self) -> dict | None:
        """Values the model's parameters hold while it is looked at between
        epochs (monitored, passed to ``on_monitor``, saved by ``Train``), as
        ``{parameter: array}``; the trained values come back before training
        goes on. ``None`` (the default): the trained values themselves."""
        return None

    def close(self, error: BaseException | None = None) -> None:
        """Called when the main loop ends, however it ends (release files,
        threads); ``error`` is the exception that ended it, ``None`` when the
        run ended normally."""


def tracker_keys(channels, key, tracker: str) -> dict:
    """``{channel name: key(name)}``, the names a run tracker stores the channels
    under; :class:`~pylearn_vae.errors.TrackingError` when two channels would
    share one (their values would merge into one curve)."""
    from pylearn_vae.errors import TrackingError
    from pylearn_vae.text import escape

    keys: dict = {}
    owner: dict = {}
    for name in channels:
        stored = key(name)
        if stored in owner:
            raise TrackingError(
                f"{tracker}: the monitor channels {escape(repr(owner[stored]))} and "
                f"{escape(repr(name))} would both be stored as {escape(repr(stored))}; "
                "rename one (for instance its monitoring set)"
            )
        owner[stored] = name
        keys[name] = stored
    return keys
