"""Helpers shared by the command-line programs."""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import sys
import threading

from pylearn_vae.errors import CLIError, Terminated
from pylearn_vae.utils.processes import note_stop_handled, stopped_even_in_native_code

__all__ = [
    "CLIError",
    "Terminated",
    "check_output",
    "check_path_flag",
    "interrupted",
    "load_model",
    "program",
    "run",
    "say",
    "show_package_log",
    "stop_signals",
]


class _ToStandardStream(logging.Handler):
    """Writes records to ``sys.stdout`` or ``sys.stderr`` as they are when the
    record comes (so a replaced stream, as in tests, is honoured)."""

    def __init__(self, stream_name: str, below_warning: bool) -> None:
        super().__init__()
        self.stream_name = stream_name
        self.below_warning = below_warning
        self.setFormatter(logging.Formatter("%(message)s"))

    def filter(self, record) -> bool:
        return (record.levelno < logging.WARNING) == self.below_warning

    def emit(self, record) -> None:
        try:
            from pylearn_vae.text import terminal_safe

            stream = getattr(sys, self.stream_name)
            stream.write(terminal_safe(self.format(record)) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def show_package_log(quiet: bool = False) -> None:
    """Let the package's log reach the terminal: information (the monitor's
    reports) on standard output, unless ``quiet``; warnings and errors on
    standard error. The library itself prints nothing; the programs call this."""
    package = logging.getLogger("pylearn_vae")
    if not any(isinstance(h, _ToStandardStream) for h in package.handlers):
        package.addHandler(_ToStandardStream("stdout", below_warning=True))
        package.addHandler(_ToStandardStream("stderr", below_warning=False))
        package.propagate = False
    package.setLevel(logging.WARNING if quiet else logging.INFO)


def load_model(path: str):
    """Load a saved VAE, or raise :class:`CLIError` saying what is wrong."""
    from pylearn_vae import persistence
    from pylearn_vae.models.vae import VAE

    try:
        model = persistence.load(path)
    except (persistence.ModelFileError, OSError) as exc:
        raise CLIError(str(exc)) from None
    if not isinstance(model, VAE):
        raise CLIError(f"{path} holds a {type(model).__name__}, not a pylearn_vae VAE model")
    return model


def say(*objects, sep: str = " ", end: str = "\n", file=None, flush: bool = False) -> None:
    """``print`` for the programs: text from files or servers cannot drive the terminal.

    Every character that is not printable (escape sequences, carriage
    returns, right-to-left overrides) is written as a Python escape; only
    line breaks are kept (:func:`pylearn_vae.text.terminal_safe`).
    """
    from pylearn_vae.text import terminal_safe

    text = terminal_safe(sep.join(str(o) for o in objects))
    print(text, end=end, file=sys.stdout if file is None else file, flush=flush)


#: Files a program's report or picture never replaces: models, checkpoints,
#: data splits and configurations (a mistyped ``--json model.h5`` would
#: otherwise destroy the model).
KEPT_SUFFIXES = (".h5", ".hdf5", ".pkl", ".npy", ".amat", ".yaml", ".yml")


def add_mlflow_flag(parser, what: str) -> None:
    """The ``--mlflow [URI]`` option (``True`` when given without a URI); ``what``
    says what becomes an MLflow run."""
    parser.add_argument(
        "--mlflow",
        nargs="?",
        const=True,
        default=None,
        metavar="URI",
        help=f"log {what} to MLflow (URI: where MLflow keeps runs; default: MLflow's own, "
        'sqlite:///mlflow.db here; needs the [mlflow] extra: pip install -e ".[mlflow]")',
    )


def mlflow_flag_problem(value) -> str | None:
    """What is wrong with the URI given to ``--mlflow``, or None (nothing imports MLflow)."""
    if not isinstance(value, str):
        return None
    from pylearn_vae.text import escape
    from pylearn_vae.train_extensions.mlflow import check_tracking_uri

    try:
        check_tracking_uri(value)
    except ValueError as exc:
        return f"--mlflow: {escape(str(exc))}"
    return None


def check_path_flag(flag: str, path) -> None:
    """Refuse a path given to ``flag`` that no file can have (a NUL character),
    naming the flag and the value (escaped). A flag not given (None) passes."""
    from pylearn_vae.utils.files import ModelFileError, check_path_name

    if path is None:
        return
    try:
        check_path_name(path, flag)
    except ModelFileError as exc:
        raise CLIError(str(exc)) from None


def check_output(path, reads=(), flag: str | None = None) -> None:
    """Refuse an output path before any work: one the package's writer would
    refuse (:func:`pylearn_vae.utils.files.check_output_path`), one of the
    files the program reads (``reads``, also through a link), and an existing
    file whose name says it is a model, data or configuration file. ``flag``
    (``--json``) names the option that gave the path in messages."""
    import os

    from pylearn_vae.text import escape
    from pylearn_vae.utils.files import ModelFileError, check_output_path

    if flag is not None:
        check_path_flag(flag, path)
    try:
        check_output_path(path)
    except ModelFileError as exc:
        raise CLIError(str(exc)) from None
    if not os.path.exists(path):
        return
    for read in reads:
        try:
            same = os.path.samefile(path, read)
        except (OSError, ValueError):
            continue
        if same:
            raise CLIError(
                f"{escape(path)} is {escape(read)}, which this program reads; refusing to "
                "replace it (give the output another name)"
            )
    if os.path.splitext(str(path))[1].lower() in KEPT_SUFFIXES:
        raise CLIError(
            f"refusing to replace {escape(path)}: a {os.path.splitext(str(path))[1]} file "
            "holds a model, data or a configuration, not this program's output (give "
            "the output another name)"
        )


@contextlib.contextmanager
def stop_signals():
    """While inside: SIGTERM and SIGHUP raise :class:`Terminated`, SIGINT
    ``KeyboardInterrupt``; a stop signal that the interpreter cannot handle
    within a few seconds (native code, such as a long compile, holds the main
    thread) ends the program at once with the same message
    (:func:`~pylearn_vae.utils.processes.stopped_even_in_native_code`).
    Outside the main thread: no change."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        note_stop_handled()
        raise Terminated(signum)

    def raise_interrupt(signum, frame):
        note_stop_handled()
        raise KeyboardInterrupt

    previous = {}
    try:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, raise_interrupt)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, raise_terminated)
        with stopped_even_in_native_code(_stop_message):
            yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop_message(signum: int) -> str:
    if signum == signal.SIGINT:
        return "error: interrupted"
    return f"error: stopped by {signal.Signals(signum).name}"


def interrupted(exc: KeyboardInterrupt, note: str = "") -> int:
    """Say that the program was stopped by a signal; return its exit status (128 + number)."""
    signum = getattr(exc, "signum", signal.SIGINT)
    say(f"{_stop_message(signum)}{note}", file=sys.stderr, flush=True)
    return 128 + signum


def program(main):
    """Decorate a program's ``main(argv)``: SIGINT, SIGTERM and SIGHUP end it
    promptly with a one-line message (and status 128 + the signal's number)
    wherever they arrive, after its ``finally`` blocks ran."""

    @functools.wraps(main)
    def wrapped(argv=None) -> int:
        with stop_signals():
            try:
                return main(argv)
            except KeyboardInterrupt as exc:
                return interrupted(exc)

    return wrapped


def run(body, argv_args) -> int:
    """Run ``body(args)``, turning expected failures into one-line messages and
    SIGINT, SIGTERM and SIGHUP into a prompt stop that says so."""
    with stop_signals():
        try:
            return body(argv_args) or 0
        except CLIError as exc:
            say(f"error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as exc:
            return interrupted(exc)
