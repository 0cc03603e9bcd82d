"""Every exception and warning type pylearn_vae raises, in one hierarchy.

Catch :class:`PylearnVAEError` for any error of the package, or a subclass
for one kind. Each also derives from the built-in exception a caller would
have caught before this module existed (``ValueError`` for bad input,
``FileNotFoundError`` for missing data, ...), so ``except ValueError`` still
works. The modules that raise them re-export them under their old names
(``pylearn_vae.config.errors.ConfigError``, ``pylearn_vae.utils.files.ModelFileError``,
``pylearn_vae.training_algorithms.sgd.NumericalError``, ...).

::

    PylearnVAEError
    ├── ConfigError (ValueError)            a YAML file, located by file and line
    │   ├── SweepSpecError                  a sweep file
    │   └── ConfigFileError                 not UTF-8 text, or no Train object to run
    ├── UnsupportedOptionError (ValueError) a Pylearn2 keyword not implemented here
    │                                       (the YAML loader turns it into a located ConfigError)
    ├── ModelFileError (ValueError)         a model, checkpoint or output file
    │   └── UnsafePickleError (pickle.UnpicklingError)
    ├── SpaceMismatchError (ValueError)     a batch outside its space
    ├── DataMissingError (FileNotFoundError)
    ├── DataFormatError (ValueError)        a data file's text is not a valid split
    ├── DownloadError (RuntimeError)
    ├── NumericalError (FloatingPointError) training produced NaN or infinity
    ├── MissingExtraError (ImportError)     an optional extra a feature needs is absent
    ├── JobRefused                          a training job would lose or repeat work
    │   ├── UnfinishedRun                   a fresh run next to an unfinished one
    │   ├── RunFinished                     resuming a finished run: nothing to do
    │   ├── ConfigChanged                   resuming with another YAML (without force)
    │   └── OutputInUse                     another process is writing the same files
    ├── SweepError (RuntimeError)           a sweep cannot start or continue
    │   └── TrialDataError                  a trial's node lacks a data set
    └── CLIError                            a program's one-line user error
    StopRequested (Exception)               not an error: training was asked to stop
    Terminated (KeyboardInterrupt)          not an error: SIGTERM or SIGHUP arrived

    PylearnVAEWarning (UserWarning)
    ├── LegacyNameWarning                   Pylearn2 names mapped
    ├── ApproximateKLWarning                a Monte Carlo KL term is used
    └── SpeedupsUnavailableWarning (RuntimeWarning)
"""

from __future__ import annotations

import pickle

from pylearn_vae.text import escape

__all__ = [
    "PylearnVAEError",
    "ConfigError",
    "UnsupportedOptionError",
    "SweepSpecError",
    "ConfigFileError",
    "ModelFileError",
    "UnsafePickleError",
    "SpaceMismatchError",
    "DataMissingError",
    "DataFormatError",
    "DownloadError",
    "NumericalError",
    "MissingExtraError",
    "TrackingError",
    "JobRefused",
    "UnfinishedRun",
    "RunFinished",
    "OutputInUse",
    "ConfigChanged",
    "SweepError",
    "TrialDataError",
    "CLIError",
    "StopRequested",
    "Terminated",
    "PylearnVAEWarning",
    "LegacyNameWarning",
    "ApproximateKLWarning",
    "SpeedupsUnavailableWarning",
]


class PylearnVAEError(Exception):
    """The base of every error pylearn_vae raises on purpose."""


class _OneLineMessage:
    """Errors whose message quotes text from a file or a server (a name, a tag,
    a header): the message is one line with every non-printable character
    escaped (:func:`pylearn_vae.text.escape`), so that it cannot drive a
    terminal or forge a line of its own."""

    def __init__(self, message="", *args) -> None:
        super().__init__(escape(message), *args)


class ConfigError(_OneLineMessage, PylearnVAEError, ValueError):
    """An error in a YAML configuration, located by file, line and column."""

    def __init__(self, message: str, where: str | None = None) -> None:
        self.where = None if where is None else escape(where)
        self.detail = escape(message)
        super().__init__(f"{where}: {message}" if where else message)


class UnsupportedOptionError(PylearnVAEError, ValueError):
    """A Pylearn2 keyword argument that pylearn_vae accepts but does not implement.

    ``options`` lists the offending keyword names (YAML errors point at the
    first one's line).
    """

    def __init__(self, message: str, options=()) -> None:
        super().__init__(message)
        self.options = list(options)


class SweepSpecError(ConfigError):
    """A mistake in a sweep file, located by file, line and column."""


class ConfigFileError(ConfigError):
    """A training job's configuration file is not UTF-8 text, or describes no ``Train``."""


class ModelFileError(_OneLineMessage, PylearnVAEError, ValueError):
    """A model file cannot be read or written."""


class UnsafePickleError(ModelFileError, pickle.UnpicklingError):
    """A pickle names something outside the allow-list, or uses a refused opcode."""


class SpaceMismatchError(PylearnVAEError, ValueError):
    """A batch does not belong to the space it was checked against."""


class DataMissingError(PylearnVAEError, FileNotFoundError):
    """A data set file is not installed."""


class DataFormatError(_OneLineMessage, PylearnVAEError, ValueError):
    """The text is not a valid binarized MNIST split."""


class DownloadError(_OneLineMessage, PylearnVAEError, RuntimeError):
    """A split could not be fetched or verified; the message says why."""


class NumericalError(PylearnVAEError, FloatingPointError):
    """Training produced a NaN or infinite value."""


class MissingExtraError(_OneLineMessage, PylearnVAEError, ImportError):
    """A feature needs an optional extra that is not installed; the message names
    the extra and the command that installs it."""


class TrackingError(_OneLineMessage, PylearnVAEError, RuntimeError):
    """A run tracker (MLflow) cannot be reached or refused a request; the message
    names the tracker's URI and what failed."""


class JobRefused(PylearnVAEError):
    """A training job will not start as asked (a file it needs is missing, or starting
    would lose or repeat an earlier run's work); nothing was written."""


class UnfinishedRun(JobRefused):
    """A fresh run next to an unfinished run's checkpoint, which it would replace."""


class RunFinished(JobRefused):
    """Resuming a run whose checkpoint says it finished: there is nothing to do."""


class ConfigChanged(JobRefused):
    """Resuming (without ``force``) with a YAML that differs from the checkpoint's;
    ``differences`` lists them as ``"path: old -> new"``."""

    def __init__(self, message: str, differences=(), summary: str | None = None) -> None:
        super().__init__(message)
        self.differences = list(differences)
        #: the message's first sentence, without the differences
        self.summary = message if summary is None else summary


class OutputInUse(JobRefused):
    """Another running process holds the lock on a file this run would write
    (its checkpoint or a model it saves); the message names that process."""


class SweepError(PylearnVAEError, RuntimeError):
    """A sweep cannot start or continue (the message says why and what to do)."""


class TrialDataError(SweepError):
    """A data set the trial needs is missing on the node it runs on."""


class CLIError(PylearnVAEError):
    """A user-facing error of a program: printed as one line, exit status 1."""


class StopRequested(Exception):
    """Training stopped at a minibatch boundary because a stop was requested
    (a signal, not an error: no subclass of :class:`PylearnVAEError`)."""


class PylearnVAEWarning(UserWarning):
    """The base of every warning pylearn_vae issues."""


class LegacyNameWarning(PylearnVAEWarning):
    """A YAML file used Pylearn2 names; they were mapped to pylearn_vae's."""


class ApproximateKLWarning(PylearnVAEWarning):
    """No analytic KL fits the prior/posterior pair; a Monte Carlo estimate is used."""


class SpeedupsUnavailableWarning(PylearnVAEWarning, RuntimeWarning):
    """The Numba speed-ups cannot be used with this PyTensor/Numba; PyTensor's own code runs."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived while a program ran: raised in its main thread,
    as Ctrl-C raises ``KeyboardInterrupt``, so that ``finally`` blocks stop its
    workers (see :func:`pylearn_vae.cli.common.stop_signals`)."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(signal.Signals(signum).name)
        self.signum = signum
