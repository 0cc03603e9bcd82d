"""Monitor channels as TensorBoard curves while the run goes (an addition: Pylearn2 had none).

The event files are written by tensorboardX, the optional ``[tensorboard]``
extra; nothing imports it until a :class:`TensorBoard` extension is made.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time

from pylearn_vae.errors import MissingExtraError, TrackingError
from pylearn_vae.train_extensions import TrainExtension, tracker_keys
from pylearn_vae.train_extensions.pictures import (
    DEFAULT_IMAGES_EVERY,
    GRID_NAMES,
    PictureSchedule,
    check_images_every,
)
from pylearn_vae.utils.files import check_output_folder, check_path_name

__all__ = [
    "CONFIG_TAG",
    "DEFAULT_IMAGES_EVERY",
    "IMAGE_TAGS",
    "INSTALL_HINT",
    "TensorBoard",
    "summary_writer_class",
]

log = logging.getLogger(__name__)

#: The command that installs the extra.
INSTALL_HINT = 'pip install -e ".[tensorboard]"'

#: The text tag under which the run's YAML is written.
CONFIG_TAG = "config_yaml"

#: The image tags: samples from the prior, test examples beside their reconstructions.
IMAGE_TAGS = GRID_NAMES


def summary_writer_class():
    """tensorboardX's ``SummaryWriter``; :class:`MissingExtraError` naming the extra
    when tensorboardX is not installed."""
    try:
        from tensorboardX import SummaryWriter  # the optional extra, imported only when used
    except ImportError:
        raise MissingExtraError(
            f"TensorBoard logging needs tensorboardX, the [tensorboard] extra: {INSTALL_HINT}"
        ) from None
    return SummaryWriter


class _EventFile:
    """One event file in the folder ``log_dir``, written as the events come: each
    ``write`` puts its event in the file's buffer and ``flush`` puts the
    buffer on disk. (tensorboardX's ``SummaryWriter`` hands events to a
    thread whose buffer only a later flush empties: a run killed after a
    checkpoint lost the checkpoint's step, which a resumed run does not
    write again. Its file writer also takes a folder named ``s3:...`` or
    ``gs:...`` for a cloud bucket; the path given here is absolute.)"""

    def __init__(self, log_dir: str, purge_step: int, suffix: str) -> None:
        from tensorboardX.proto.event_pb2 import Event, SessionLog
        from tensorboardX.record_writer import RecordWriter

        self._event = Event
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}{suffix}"
        self._records = RecordWriter(os.path.join(os.path.abspath(log_dir), name))
        self._records.write(
            Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
        )
        # (TensorBoard hides the events of the earlier files from this step on)
        start = SessionLog(status=SessionLog.START)
        self.write(None, purge_step, session_log=start)

    def write(self, summary, step: int, **fields) -> None:
        if summary is not None:
            fields["summary"] = summary
        event = self._event(wall_time=time.time(), step=step, **fields)
        self._records.write(event.SerializeToString())

    def flush(self) -> None:
        self._records.flush()

    def close(self) -> None:
        """Flush and close (the file is closed even if the flush fails)."""
        self._records.close()


#: Characters tensorboardX replaces by "_" in a tag (it also drops leading slashes).
_NOT_IN_TAG = re.compile(r"[^-/\w\.]")


def tag_of(channel: str) -> str:
    """The tag tensorboardX stores a channel's scalars under.

    >>> tag_of("valid_objective"), tag_of("/a:b")
    ('valid_objective', 'a_b')
    """
    return _NOT_IN_TAG.sub("_", channel).lstrip("/")


def as_markdown_code(text: str) -> str:
    """``text`` as a Markdown code block (TensorBoard renders text summaries as
    Markdown): every line indented by four spaces.

    >>> as_markdown_code("a: 1\\nb: 2\\n")
    '    a: 1\\n    b: 2'
    """
    return "\n".join("    " + line for line in text.splitlines())


class TensorBoard(TrainExtension):
    """Write every monitor channel to TensorBoard event files in ``log_dir``.

    At every monitoring step (the one before training and one per epoch) each
    channel's value just recorded is written as a scalar whose tag is the
    channel's name and whose step is the number of epochs seen, so that the
    curves show the values of the printed block, as float32 (TensorBoard's
    scalar type). The run's YAML (when the run was started by
    :class:`~pylearn_vae.job.TrainingJob`) is written as text under
    ``config_yaml`` at the first step each session writes. Every
    ``images_every`` epochs (from step 0) two image grids are written
    (:mod:`~pylearn_vae.train_extensions.pictures`): ``samples``, the means
    of p(x|z) for the same 64 draws from p(z) each time, and
    ``reconstructions``, 32 test examples each beside its reconstruction.
    Events are flushed after every step.

    A resumed run continues the same curves: its first step is the one after
    the checkpoint's, and the writer starts there with a ``purge_step``, so
    that TensorBoard hides the steps a killed run wrote after its last
    checkpoint (the resumed run writes them again). A fresh run in a folder
    that holds an earlier run's events hides them the same way (from step 0).

    Parameters
    ----------
    log_dir : str
        The folder of the event files (made if missing); give each run its
        own folder, TensorBoard shows one run per folder.
    images_every : int, optional
        Epochs between two image grids; 0 writes none. When not given: every
        10 epochs if the model's examples are square images (a VAE with
        ``nvis`` 784, say), else none; when given, a model whose examples
        cannot be drawn is an error at setup.
    """

    def __init__(self, log_dir: str, images_every: int | None = None) -> None:
        if not isinstance(log_dir, str | os.PathLike) or not os.fspath(log_dir):
            raise ValueError(f"TensorBoard: log_dir must be a folder path, got {log_dir!r}")
        check_path_name(log_dir, "TensorBoard: log_dir")
        check_images_every("TensorBoard", images_every)
        summary_writer_class()  # (the extra is missing: say so now)
        self.log_dir = os.fspath(log_dir)
        self.images_every = images_every
        self.config_text: str | None = None
        self._writer = None
        self._config_written = False
        self._pictures: PictureSchedule | None = None

    def use_train(self, train) -> None:
        self.config_text = train.config_text

    def setup(self, model, dataset, algorithm) -> None:
        check_output_folder(self.log_dir, "TensorBoard: log_dir")
        self._pictures = PictureSchedule(
            "TensorBoard", self.images_every, model, dataset, algorithm
        )

    def on_monitor(self, model, dataset, algorithm) -> None:
        step = model.monitor.get_epochs_seen()
        try:
            self._write_step(model.monitor, step)
        except OSError as exc:  # (a full disk: the run stops, its checkpoint is kept)
            self._writer, writer = None, self._writer
            with contextlib.suppress(OSError):
                writer.close()
            raise TrackingError(
                f"TensorBoard: writing the events of epoch {step} into {self.log_dir} failed: "
                f"{exc.strerror or exc}"
            ) from None

    def _write_step(self, monitor, step: int) -> None:
        from tensorboardX import summary

        if self._writer is None:
            # (event files are named by the second: two writers in one second
            # would share one file, the second truncating the first. The
            # nanoseconds keep the names apart and in the order the sessions
            # started, which is the order TensorBoard reads them in.)
            self._writer = _EventFile(self.log_dir, step, f".{time.time_ns():020d}")
            self._config_written = False
        tracker_keys(monitor.channels, tag_of, "TensorBoard")
        for name, channel in monitor.channels.items():
            if channel.val_record and channel.epoch_record[-1] == step:
                self._writer.write(summary.scalar(name, channel.val_record[-1]), step)
        if self.config_text is not None and not self._config_written:
            text = summary.text(CONFIG_TAG, as_markdown_code(self.config_text))
            self._writer.write(text, step)
            self._config_written = True
        grids = self._pictures.due(step) if self._pictures is not None else {}
        for tag, grid in grids.items():
            self._writer.write(summary.image(tag, grid, dataformats="HW"), step)
        self._writer.flush()

    def close(self, error: BaseException | None = None) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except OSError as exc:
            raise TrackingError(
                f"TensorBoard: closing the event file in {self.log_dir} failed: "
                f"{exc.strerror or exc}"
            ) from None
