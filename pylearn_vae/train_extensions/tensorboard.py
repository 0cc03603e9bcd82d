"""Monitor channels as TensorBoard curves while the run goes (an addition: Pylearn2 had none).

The event files are written by tensorboardX, the optional ``[tensorboard]``
extra; nothing imports it until a :class:`TensorBoard` extension is made.
"""

from __future__ import annotations

import os
import time

from pylearn_vae.errors import MissingExtraError
from pylearn_vae.train_extensions import TrainExtension
from pylearn_vae.utils.files import check_output_folder, check_path_name

__all__ = ["CONFIG_TAG", "INSTALL_HINT", "TensorBoard", "summary_writer_class"]

#: The command that installs the extra.
INSTALL_HINT = 'pip install -e ".[tensorboard]"'

#: The text tag under which the run's YAML is written.
CONFIG_TAG = "config_yaml"


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
    ``config_yaml`` at the first step each session writes. Events are
    flushed after every step.

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
    """

    def __init__(self, log_dir: str) -> None:
        if not isinstance(log_dir, str | os.PathLike) or not os.fspath(log_dir):
            raise ValueError(f"TensorBoard: log_dir must be a folder path, got {log_dir!r}")
        check_path_name(log_dir, "TensorBoard: log_dir")
        self._writer_class = summary_writer_class()
        self.log_dir = os.fspath(log_dir)
        self.config_text: str | None = None
        self._writer = None
        self._config_written = False

    def use_config_text(self, text: str) -> None:
        self.config_text = text

    def setup(self, model, dataset, algorithm) -> None:
        check_output_folder(self.log_dir, "TensorBoard: log_dir")

    def on_monitor(self, model, dataset, algorithm) -> None:
        monitor = model.monitor
        step = monitor.get_epochs_seen()
        if self._writer is None:
            # (tensorboardX names files by the second: two writers in one
            # second would share one file, the second truncating the first.
            # The nanoseconds keep the names apart and in the order the
            # sessions started, which is the order TensorBoard reads them in.)
            self._writer = self._writer_class(
                logdir=self.log_dir,
                purge_step=step,
                filename_suffix=f".{time.time_ns():020d}",
            )
            self._config_written = False
        for name, channel in monitor.channels.items():
            if channel.val_record and channel.epoch_record[-1] == step:
                self._writer.add_scalar(name, channel.val_record[-1], global_step=step)
        if self.config_text is not None and not self._config_written:
            self._writer.add_text(CONFIG_TAG, as_markdown_code(self.config_text), global_step=step)
            self._config_written = True
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
