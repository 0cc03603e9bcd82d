"""A run's parameters, monitor channels and best model in MLflow (an addition:
Pylearn2 had none).

MLflow's client is the optional ``[mlflow]`` extra (``mlflow-skinny`` with
SQLAlchemy for MLflow's local SQLite store); nothing imports it until an
:class:`MLflow` extension is made.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable

from pylearn_vae.errors import MissingExtraError, ModelFileError, StopRequested, TrackingError
from pylearn_vae.text import escape
from pylearn_vae.train_extensions import TrainExtension, tracker_keys
from pylearn_vae.utils.files import (
    check_output_folder,
    check_path_name,
    regular_file_problem,
)
from pylearn_vae.utils.image import write_png

__all__ = [
    "INSTALL_HINT",
    "MAX_PARAM_VALUE",
    "MLflow",
    "ERROR_TAG",
    "RUN_KEY_TAG",
    "metric_key",
    "end_named_run",
    "latest_run_where",
    "mlflow_client_class",
    "redacted",
    "shared_store",
]

log = logging.getLogger(__name__)

#: The command that installs the extra.
INSTALL_HINT = 'pip install -e ".[mlflow]"'

#: The tag that names the checkpoint a run belongs to; a resumed run continues
#: the latest MLflow run with its checkpoint's tag.
RUN_KEY_TAG = "pylearn_vae.checkpoint"

#: The tag of a FAILED run that names the exception that ended it.
ERROR_TAG = "pylearn_vae.error"

#: MLflow's longest parameter value (longer values are cut, ending in "...").
MAX_PARAM_VALUE = 6000

#: Parameters and metrics per request (MLflow takes at most 100 and 1000).
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000

#: Seconds to wait for a tracking server to accept a connection at setup.
CONNECT_TIMEOUT = 10.0

#: Seconds a run waits for one request to the tracking store, MLflow's
#: retries included (MLflow retries a failing server for minutes, and a server
#: that sends its answer a byte at a time never times out).
REQUEST_DEADLINE = 120.0

#: Seconds a request may still take once a stop was asked for (Ctrl-C,
#: SIGTERM): then the run stops, and its MLflow record ends where it ends.
STOP_GRACE = 5.0

#: Seconds between two looks at a request's progress and at a stop request.
_POLL = 0.1

#: Characters MLflow allows in a metric name; others become "_".
_NOT_IN_KEY = re.compile(r"[^\w\-. /]")

#: Artifact folder of the saved model files.
MODEL_ARTIFACTS = "model"

#: Artifact folder of the image grids (``pictures/epoch_0010/samples.png``).
PICTURE_ARTIFACTS = "pictures"


class _GivenUp(Exception):
    """A request to the tracking store that did not end in time (or by a stop)."""

    def __init__(self, stopped: bool) -> None:
        super().__init__("given up")
        self.stopped = stopped


class _Courier:
    """Carries requests to the tracking store, one at a time, on one daemon
    thread (MLflow's client and its database connections stay on that
    thread), while the training thread waits for each within a deadline and
    goes on seeing stop requests: a hung or dripping server costs a run at
    most :data:`REQUEST_DEADLINE` seconds, a stop at most :data:`STOP_GRACE`."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def _serve(self) -> None:
        while True:
            work, answer = self._jobs.get()
            try:
                answer["value"] = work()
            except BaseException as exc:  # (handed to the waiting thread)
                answer["error"] = exc
            answer["done"].set()

    def carry(self, work: Callable, stopping: Callable[[], bool], deadline: float):
        """``work()`` on the courier's thread; its result or exception, or
        :class:`_GivenUp` when it takes longer than ``deadline`` seconds (or
        :data:`STOP_GRACE` once ``stopping()``)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="mlflow-courier", daemon=True)
            self._thread.start()
        answer = {"done": threading.Event()}
        self._jobs.put((work, answer))
        end = time.monotonic() + deadline
        while not answer["done"].wait(_POLL):
            now = time.monotonic()
            if stopping():
                end = min(end, now + STOP_GRACE)
            if now >= end:
                raise _GivenUp(stopping())
        if "error" in answer:
            raise answer["error"]
        return answer["value"]


def mlflow_client_class():
    """MLflow's ``MlflowClient``; :class:`MissingExtraError` naming the extra when
    MLflow is not installed."""
    # MLflow 3 sends usage data to its makers unless told not to; a training
    # job contacts no one but the tracking store it was given (set
    # MLFLOW_DISABLE_TELEMETRY=false to let MLflow send it).
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for name, value in _MLFLOW_SETTINGS.items():
        os.environ.setdefault(name, value)
    try:
        from mlflow.tracking import MlflowClient  # the optional extra, imported only when used
    except ImportError:
        raise MissingExtraError(
            f"MLflow tracking needs MLflow's client, the [mlflow] extra: {INSTALL_HINT}"
        ) from None
    _one_line_logs()
    return MlflowClient


#: MLflow settings a run uses unless the environment sets them: a failing
#: server fails a request in seconds, not after MLflow's two minutes of
#: retries; MLflow prints nothing of its own on the terminal (a server's run
#: name in a "View run" line could carry control characters).
_MLFLOW_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


class _OneLineHandler(logging.Handler):
    """MLflow's (and its database migrations') warnings and errors as one
    escaped line each through this package's log, without tracebacks: text
    from a server or a database never reaches the terminal raw."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = _first_line(Exception(record.getMessage()))
        except Exception:  # (a record whose arguments do not format)
            text = str(record.msg)
        log.log(record.levelno, "MLflow: %s", escape(text))


def _one_line_logs() -> None:
    for name in ("mlflow", "alembic"):
        logger = logging.getLogger(name)
        if any(isinstance(h, _OneLineHandler) for h in logger.handlers):
            continue
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(_OneLineHandler())
        logger.propagate = False
        logger.setLevel(logging.WARNING)


def metric_key(channel: str) -> str:
    """A monitor channel's name as an MLflow metric name.

    >>> metric_key("valid_objective"), metric_key("kl[z]")
    ('valid_objective', 'kl_z_')
    """
    return _NOT_IN_KEY.sub("_", channel)


#: What to give instead of a tracking URI that cannot be used.
_GIVE = "give sqlite:///PATH/mlflow.db (a local file) or a server's http://host:port"


def redacted(uri: str) -> str:
    """``uri`` as messages show it: a password in it replaced by ``***``.

    >>> redacted("http://alice:s3cr3t@host:5000/x")
    'http://alice:***@host:5000/x'
    """
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@", r"\1:***@", uri)


def check_tracking_uri(uri: str) -> None:
    """Refuse a tracking URI MLflow would misread or that keeps nothing: a bare
    path (MLflow's old folder store, which MLflow 3 refuses), a URI that does
    not parse, an in-memory or read-only SQLite database."""
    shown = escape(repr(redacted(uri)))
    if not uri.strip():
        raise ValueError(f"MLflow tracking URI is empty; {_GIVE}")
    check_path_name(uri, "MLflow tracking URI")
    if uri == "databricks":
        return
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri):
        raise ValueError(
            f"MLflow tracking URI {shown} is a path, not a URI; MLflow 3 keeps runs in a "
            f"database: give sqlite:///{escape(uri.rstrip('/'))}/mlflow.db (a local file) or "
            "a server's http://host:port"
        )
    try:
        urllib.parse.urlsplit(uri).port  # noqa: B018 (parses the host and port)
    except ValueError as exc:
        raise ValueError(
            f"MLflow tracking URI {shown} is not a valid URI ({escape(str(exc))}); {_GIVE}"
        ) from None
    database = _sqlite_database(uri)
    if database is None:
        return
    path, options = database
    if path in ("", ":memory:") or options.get("mode") == "memory":
        raise ValueError(
            f"MLflow tracking URI {shown} keeps the runs in memory, lost when the program "
            f"ends; {_GIVE}"
        )
    if options.get("mode") == "ro" or options.get("immutable") == "1":
        raise ValueError(
            f"MLflow tracking URI {shown} opens the database read-only, where a run "
            f"cannot be logged; {_GIVE}"
        )


def _sqlite_database(uri: str) -> tuple[str, dict[str, str]] | None:
    """The database file of an ``sqlite://`` URI (also ``sqlite+DRIVER://``;
    ``""`` or ``":memory:"``: in memory) and its query's options (SQLite's
    own, of a ``file:`` name, included); None for other URIs."""
    match = re.match(r"^sqlite(\+[A-Za-z0-9_]+)?:", uri, re.IGNORECASE)
    if match is None:
        return None
    rest = uri[match.end() :]
    path = rest[3:] if rest.startswith("///") else rest.lstrip("/")
    path, _, query = path.partition("?")
    options = {k.lower(): v.lower() for k, v in urllib.parse.parse_qsl(query)}
    if path.startswith("file:"):  # (an SQLite URI file name)
        path = urllib.parse.unquote(path[len("file:") :])
    return path, options


def _sqlite_path(uri: str) -> str | None:
    """The database file of an SQLite URI, None for other URIs."""
    database = _sqlite_database(uri)
    return None if database is None else database[0]


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_server_reachable(uri: str) -> None:
    """For an ``http(s)://`` tracking URI, :class:`TrackingError` at once when
    nothing answers HTTP there within :data:`CONNECT_TIMEOUT` seconds, or answers
    with a server error (MLflow itself retries for minutes)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    uri = escape(redacted(uri))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        status = _http_status(parts, port)
    except (OSError, ValueError) as exc:
        raise TrackingError(
            f"MLflow: cannot reach the tracking server at {uri}: {_first_line(exc)}; "
            "start it (mlflow server) or give another --mlflow URI"
        ) from None
    if status is None or status >= 500:
        what = "no HTTP" if status is None else f"HTTP status {status}"
        raise TrackingError(
            f"MLflow: the tracking server at {uri} answered with {what}; "
            "check the server (mlflow server) or give another --mlflow URI"
        )


def _http_status(parts: urllib.parse.SplitResult, port: int) -> int | None:
    """The status of the answer to ``GET /health`` at the server of ``parts``
    (a split URI), None if the answer is not HTTP; every step within one
    :data:`CONNECT_TIMEOUT`."""
    host = parts.hostname or ""
    where = parts.netloc.rpartition("@")[2].encode("ascii", "replace")  # (no user:password)
    deadline = time.monotonic() + CONNECT_TIMEOUT

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no answer within {CONNECT_TIMEOUT:g} s")
        return remaining

    with socket.create_connection((host, port), timeout=left()) as raw:
        connection = raw
        if parts.scheme == "https":
            context = ssl.create_default_context()  # (a probe: MLflow checks the certificate)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            connection = context.wrap_socket(raw, server_hostname=host)
        connection.sendall(b"GET /health HTTP/1.0\r\nHost: " + where + b"\r\n\r\n")
        answer = b""
        while b"\n" not in answer and len(answer) < 256:
            connection.settimeout(left())
            chunk = connection.recv(256 - len(answer))
            if not chunk:
                break
            answer += chunk
    match = re.match(rb"HTTP/\d(?:\.\d)? (\d{3})[ \r\n]", answer)
    return int(match.group(1)) if match else None


#: The first bytes of an SQLite database file.
_SQLITE_HEADER = b"SQLite format 3\x00"


def _check_sqlite_file(uri: str, path: str) -> None:
    """:class:`TrackingError` now when the database file of ``uri`` cannot be
    MLflow's store (SQLite would retry for minutes, or write into it)."""
    problem = (
        "is a symbolic link (give the database's own path)"
        if os.path.islink(path)
        else regular_file_problem(path)
    )
    if problem is None:
        problem = _database_problem(path)
    elif problem == "does not exist":
        problem = None
    if problem is not None:
        raise TrackingError(
            f"MLflow store {escape(redacted(uri))}: {escape(path)} {problem}; give the path "
            "of an SQLite database file (made if missing)"
        )
    try:  # (SQLite writes a journal beside the database)
        check_output_folder(os.path.dirname(path) or ".", "MLflow store folder")
    except ModelFileError as exc:
        raise TrackingError(f"MLflow store {uri}: {exc}") from None


#: Tables every MLflow SQLite store has.
_MLFLOW_TABLES = {"experiments", "runs", "alembic_version"}


def _database_problem(path: str) -> str | None:
    """Why the existing file ``path`` cannot be MLflow's store: not SQLite,
    not writable, another program's database; None if it can."""
    import sqlite3

    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)  # (no wait if it became a FIFO)
    except OSError as exc:
        return f"cannot be written ({exc.strerror or exc})"
    try:
        start = os.read(fd, len(_SQLITE_HEADER))
    finally:
        os.close(fd)
    if not start:
        return None
    if start != _SQLITE_HEADER:
        return f"is not an SQLite database (it begins {escape(repr(start))})"
    try:
        link = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
        with contextlib.closing(sqlite3.connect(link, uri=True, timeout=1.0)) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.Error as exc:
        return f"cannot be read as an SQLite database ({escape(str(exc))})"
    tables = {row[0] for row in rows}
    if tables and not _MLFLOW_TABLES <= tables:
        some = ", ".join(sorted(escape(t) for t in tables)[:5])
        return f"is another program's SQLite database (its tables: {some}), not MLflow's"
    return None


def check_store(uri: str | None) -> None:
    """:class:`TrackingError` at once when the tracking store at ``uri`` (None:
    ``MLFLOW_TRACKING_URI``, if set) cannot be used: a server that does not
    answer, a database path that is a folder, a FIFO, a read-only place or
    another kind of file."""
    if uri is None:
        uri = os.environ.get("MLFLOW_TRACKING_URI") or _default_tracking_uri()
        try:
            check_tracking_uri(uri)
        except ValueError as exc:
            raise TrackingError(str(exc)) from None
    path = _sqlite_path(uri)
    if path:
        _check_sqlite_file(uri, path)
    else:
        check_server_reachable(uri)


def artifact_repository_for(artifact_uri: str, tracking_uri: str):
    """MLflow's artifact repository for ``artifact_uri`` (the registry MLflow's
    artifact-store plugins register with: the one MLflow name this package
    reaches below ``MlflowClient``, guarded by a test)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(artifact_uri, tracking_uri=tracking_uri)


def _default_tracking_uri() -> str:
    """MLflow's own default store (``sqlite:///mlflow.db`` in MLflow 3)."""
    import mlflow

    return mlflow.get_tracking_uri()


def shared_store(tracking_uri: str | None, experiment_name: str) -> dict:
    """Settings for runs of many processes in one experiment (a sweep's trials,
    each in its own working folder): MLflow's default store resolved here to
    an absolute URI, the server checked, the experiment made once (its
    artifacts beside this process's store). Returns the :class:`MLflow`
    keywords ``tracking_uri`` and ``experiment_name``."""
    client_class = mlflow_client_class()
    if tracking_uri is None:
        import mlflow

        tracking_uri = mlflow.get_tracking_uri()
    else:
        check_tracking_uri(tracking_uri)
    check_store(tracking_uri)
    try:
        client = client_class(tracking_uri=tracking_uri)
        if client.get_experiment_by_name(experiment_name) is None:
            client.create_experiment(experiment_name)
    except Exception as exc:
        raise TrackingError(
            f"MLflow ({escape(redacted(tracking_uri))}): opening the experiment "
            f"{escape(repr(experiment_name))} failed: "
            f"{type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    return {"tracking_uri": tracking_uri, "experiment_name": experiment_name}


def end_named_run(settings: dict, run_name: str, status: str) -> None:
    """Mark the latest run named ``run_name`` of the experiment in ``settings`` (from
    :func:`shared_store`) ``status``, if it is still RUNNING: a sweep's driver
    does it when Ray Tune ends a trial, whose process may be stopped before
    its extension could."""
    client = mlflow_client_class()(tracking_uri=settings["tracking_uri"])
    experiment = client.get_experiment_by_name(settings["experiment_name"])
    if experiment is None:
        return
    run = latest_run_where(
        client, experiment.experiment_id, "attributes.run_name", run_name, lambda r: r.info.run_name
    )
    if run is not None and run.info.status == "RUNNING":
        client.set_terminated(run.info.run_id, status=status)


#: Runs read to find the one a filter means (see :func:`latest_run_where`).
_SEARCHED_RUNS = 100


def latest_run_where(client, experiment_id: str, field: str, value: str, read):
    """The latest run of the experiment whose ``field`` (as MLflow's filters name
    it) is ``value`` (``read(run)`` gives it), or None.

    MLflow's filter strings cannot hold a quote or a final backslash in a
    value (it does not unescape): the search asks for ``LIKE`` with each of
    them left to the one-character wildcard, and the runs found are compared
    here. (A checkpoint in a folder named ``bob's runs`` is found again.)
    """
    pattern = re.sub(r"['\"\\]", "_", value)
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"{field} LIKE '{pattern}'",
        order_by=["attributes.start_time DESC"],
        max_results=_SEARCHED_RUNS,
    )
    return next((run for run in runs if read(run) == value), None)


class MLflow(TrainExtension):
    """Log a run to MLflow: parameters, a metric per monitor channel, the best model.

    * **Parameters**: the run's YAML (when the run was started by
      :class:`~pylearn_vae.job.TrainingJob`) flattened to dotted keys, as
      written (``model.nvis`` = ``784``, ``model.class`` =
      ``pylearn_vae.models.vae.VAE``, ``algorithm.learning_rate`` = ``0.02``).
    * **Metrics**: at every monitoring step (the one before training and one
      per epoch) each channel's value just recorded, with step = epochs seen.
    * **Artifacts**: when the run ends, however it ends, the model files it
      saved (the best model of each
      :class:`~pylearn_vae.train_extensions.best_params.MonitorBasedSaveBest`
      and the Train's ``save_path``) under ``model/``; the run is then marked
      FINISHED, KILLED (stopped by a signal or Ctrl-C) or FAILED. Every
      ``images_every`` epochs (from step 0) the two image grids of
      :mod:`~pylearn_vae.train_extensions.pictures` as
      ``pictures/epoch_NNNN/samples.png`` and ``reconstructions.png``.

    Each request waits at most :data:`REQUEST_DEADLINE` seconds (a
    :class:`~pylearn_vae.errors.TrackingError` then ends the run, its
    checkpoint kept), and at most :data:`STOP_GRACE` seconds once a stop was
    asked for (the run then stops as asked; its MLflow record ends where it
    ends, and the run stays RUNNING there until a resumed run continues it).

    A resumed run continues the MLflow run of its checkpoint (the latest run
    tagged ``pylearn_vae.checkpoint`` with the checkpoint's path) and logs
    each step once: the steps a killed run logged after its last checkpoint
    are not logged again (a resumed run computes the same values).

    Parameters
    ----------
    tracking_uri : str, optional
        Where MLflow keeps runs: ``sqlite:///path/mlflow.db``, a server's
        ``http://host:port``. Default: MLflow's own (``MLFLOW_TRACKING_URI``,
        else ``sqlite:///mlflow.db`` in the working folder, with artifacts in
        ``./mlruns``, as ``mlflow ui`` expects).
    experiment_name : str, optional
        The experiment (made if missing); default MLflow's ``Default``.
    run_name : str, optional
        The run's name (default: a name MLflow makes up).
    images_every : int, optional
        Epochs between two pairs of image grids (0: none). Default: every 10
        epochs if the model's examples are square images, else none; when
        given, a model whose examples cannot be drawn is an error at setup.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        run_name: str | None = None,
        images_every: int | None = None,
    ) -> None:
        for what, value in (
            ("tracking_uri", tracking_uri),
            ("experiment_name", experiment_name),
            ("run_name", run_name),
        ):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"MLflow: {what} must be a non-empty string, got {value!r}")
        if tracking_uri is not None:
            check_tracking_uri(tracking_uri)
        from pylearn_vae.train_extensions.pictures import check_images_every

        check_images_every("MLflow", images_every)
        self._client_class = mlflow_client_class()
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.images_every = images_every
        self.run_id: str | None = None
        self._client = None
        self._experiment_id: str | None = None
        self._train = None
        self._pictures = None  # (a PictureSchedule, at setup)
        self._logged: set[tuple[str, int]] = set()
        self._artifacts = None  # (the run's artifact repository, its location checked once)
        self._courier = _Courier()
        self._failed = False  # (a request failed: only the run's end is still reported)
        self._stuck = False  # (a request was given up: the store is not asked again)

    def use_train(self, train) -> None:
        """Remember ``train``, reach the tracking store and find or make the
        experiment (before anything compiles: a wrong URI fails at once)."""
        self._train = train
        self._request("reaching the store", lambda: check_store(self.tracking_uri))
        self._stopped_at("reaching the store")

        def open_experiment():
            client = self._client_class(tracking_uri=self.tracking_uri)
            name = self.experiment_name or "Default"
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                return client, client.create_experiment(name)
            return client, experiment.experiment_id

        opened = self._request("opening the experiment", open_experiment)
        self._stopped_at("opening the experiment")
        self._client, self._experiment_id = opened

    def _stopped_at(self, what: str) -> None:
        """:class:`StopRequested` when a stop given before training ended ``what``."""
        if self._stuck:
            reason = self._train.algorithm.stop_requested
            raise StopRequested(f"stopped by {reason} while {what} (MLflow)")

    def setup(self, model, dataset, algorithm) -> None:
        from pylearn_vae.train_extensions.pictures import PictureSchedule

        self._pictures = PictureSchedule("MLflow", self.images_every, model, dataset, algorithm)

    # -- requests to the store ----------------------------------------------
    def _where(self) -> str:
        return (
            escape(redacted(self.tracking_uri)) if self.tracking_uri else "MLflow's default store"
        )

    def _stopping(self) -> bool:
        return bool(getattr(getattr(self._train, "algorithm", None), "stop_requested", None))

    def _request(self, what: str, work: Callable, final: bool = False):
        """``work()`` (calls of MLflow's client) through the courier; any failure
        as one :class:`TrackingError` naming the store. A request given up at a
        stop returns None after a warning. After a failure only ``final``
        requests (the run's end) are sent, within :data:`STOP_GRACE`; after a
        request was given up none (it may still be running)."""
        if self._stuck or (self._failed and not final):
            return None
        deadline = STOP_GRACE if self._failed else REQUEST_DEADLINE
        try:
            return self._courier.carry(work, self._stopping, deadline)
        except _GivenUp as given_up:
            self._failed = self._stuck = True
            if not given_up.stopped:
                raise TrackingError(
                    f"MLflow ({self._where()}): {what} did not end within "
                    f"{deadline:g} s; check the tracking server"
                ) from None
            log.warning(
                "MLflow (%s): %s was given up to stop at once%s",
                self._where(),
                what,
                "; the run's record in MLflow ends here (a resumed run logs what it misses)"
                if self.run_id is not None
                else "",
            )
            return None
        except TrackingError:
            self._failed = True
            raise
        except Exception as exc:
            self._failed = True
            raise TrackingError(
                f"MLflow ({self._where()}): {what} failed: {type(exc).__name__}: {_first_line(exc)}"
            ) from exc
        except BaseException:
            self._failed = self._stuck = True
            raise

    # -- the run ----------------------------------------------------------
    def _run_key(self) -> str | None:
        path = getattr(self._train, "checkpoint_path", None)
        return None if path is None else os.path.abspath(path)

    def _earlier_run(self, key: str):
        return latest_run_where(
            self._client,
            self._experiment_id,
            f"tags.`{RUN_KEY_TAG}`",
            key,
            lambda run: run.data.tags.get(RUN_KEY_TAG),
        )

    def _start(self, step: int) -> tuple[str, set[tuple[str, int]]]:
        """The run to log into (the checkpoint's earlier run, else a new one with
        the parameters logged) and the (metric, step) pairs it already holds."""
        key = self._run_key()
        earlier = self._earlier_run(key) if step > 0 and key is not None else None
        if earlier is not None:
            run_id = earlier.info.run_id
            self._artifacts = self._artifact_repository(earlier.info.artifact_uri)
            self._client.update_run(run_id, status="RUNNING")
            if not earlier.data.params:  # (the first session could not log them)
                self._log_params(run_id)
            logged = {
                (name, int(point.step))
                for name in earlier.data.metrics
                for point in self._client.get_metric_history(run_id, name)
            }
            log.info("MLflow: continuing run %s", run_id)
            return run_id, logged
        tags = {RUN_KEY_TAG: key} if key is not None else {}
        run = self._client.create_run(self._experiment_id, run_name=self.run_name, tags=tags)
        self._artifacts = self._artifact_repository(run.info.artifact_uri)
        self._log_params(run.info.run_id)
        return run.info.run_id, set()

    def _artifact_repository(self, artifact_uri: str | None):
        """The repository every file of the run goes to, at the location the store
        gave when the run was made or found (MLflow's ``log_artifact`` would ask
        the store again before every file). :class:`TrackingError` when a
        remote store gives a folder on this machine: a run writes its files
        where the user said, not where a server says."""
        uri = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
        local_store = not uri or _sqlite_database(uri) is not None  # (the user's own choice)
        scheme = urllib.parse.urlsplit(artifact_uri or "").scheme.lower()
        if not local_store and (scheme in ("", "file") or len(scheme) == 1):  # (C:\\ too)
            raise TrackingError(
                f"MLflow ({self._where()}): the server gives the run the artifact location "
                f"{escape(repr(artifact_uri or ''))}, a folder on this machine; a run does not "
                "write its files where a server says: start the server with --serve-artifacts "
                "(mlflow-artifacts:) or use a store of your own"
            )
        return artifact_repository_for(artifact_uri, self._client.tracking_uri)

    def _log_params(self, run_id: str) -> None:
        from mlflow.entities import Param

        text = getattr(self._train, "config_text", None)
        if text is None:
            return
        from pylearn_vae.config.compare import flattened_config

        params, keys = [], set()
        for key, value in flattened_config(text).items():
            safe = metric_key(key)  # (MLflow's characters only, unique)
            while safe in keys:
                safe += "_"
            keys.add(safe)
            if len(value) > MAX_PARAM_VALUE:
                value = value[: MAX_PARAM_VALUE - 3] + "..."
            params.append(Param(safe, value))
        for start in range(0, len(params), _PARAMS_PER_BATCH):
            self._client.log_batch(run_id, params=params[start : start + _PARAMS_PER_BATCH])

    def on_monitor(self, model, dataset, algorithm) -> None:
        """Log every (channel, step) of the monitor's records not logged yet (the
        step just recorded, and after a resume any step an earlier session
        could not log), and the image grids when they are due."""
        monitor = model.monitor
        keys = tracker_keys(monitor.channels, metric_key, "MLflow")
        step = monitor.get_epochs_seen()
        if self.run_id is None:
            started = self._request("starting the run", lambda: self._start(step))
            if started is None:
                return
            self.run_id, self._logged = started
        self._log_metrics(monitor, keys, step)
        grids = self._pictures.due(step) if self._pictures is not None else {}
        if grids and not self._failed:
            self._log_pictures(grids, step)

    def _log_metrics(self, monitor, keys: dict[str, str], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        pending = {}
        for name, channel in monitor.channels.items():
            key = keys[name]
            for epoch, value in zip(channel.epoch_record, channel.val_record, strict=True):
                if (key, int(epoch)) not in self._logged:
                    pending[key, int(epoch)] = Metric(key, float(value), now, int(epoch))
        items = list(pending.items())
        run_id = self.run_id
        for start in range(0, len(items), _METRICS_PER_BATCH):
            batch = [metric for _, metric in items[start : start + _METRICS_PER_BATCH]]
            self._request(
                f"logging the metrics of epoch {step}",
                lambda batch=batch: self._client.log_batch(run_id, metrics=batch),
            )
            if self._failed:
                return
            self._logged.update(where for where, _ in items[start : start + _METRICS_PER_BATCH])

    def _log_pictures(self, grids: dict, step: int) -> None:
        """The grids as PNG files under ``pictures/epoch_NNNN/``."""
        with tempfile.TemporaryDirectory(prefix="pylearn_vae-pictures-") as folder:
            for name, grid in grids.items():
                write_png(os.path.join(folder, f"{name}.png"), grid, scale=2)
            self._request(
                f"saving the pictures of epoch {step}",
                lambda: self._artifacts.log_artifacts(
                    folder, f"{PICTURE_ARTIFACTS}/epoch_{step:04d}"
                ),
            )

    def _model_files(self) -> list[str]:
        from pylearn_vae.train_extensions.best_params import MonitorBasedSaveBest

        train = self._train
        paths = [getattr(train, "save_path", None)]
        paths += [
            e.save_path
            for e in getattr(train, "extensions", ())
            if isinstance(e, MonitorBasedSaveBest)
        ]
        return [p for p in dict.fromkeys(paths) if p and os.path.isfile(p)]

    def close(self, error: BaseException | None = None) -> None:
        if self.run_id is None:
            return
        run_id, self.run_id = self.run_id, None
        if error is None or (isinstance(error, SystemExit) and error.code in (0, None)):
            status = "FINISHED"  # (Ray Tune ends a trial it stops with SystemExit(0))
        elif isinstance(error, StopRequested | KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
            message = f"{type(error).__name__}: {_first_line(error)}"
            self._request(
                "noting the error",
                lambda: self._client.set_tag(run_id, ERROR_TAG, message),
                final=True,
            )
        files = self._model_files()

        def save_files():
            for path in files:
                self._artifacts.log_artifact(path, MODEL_ARTIFACTS)

        self._request("saving the model files", save_files)
        self._request(
            f"marking the run {status}",
            lambda: self._client.set_terminated(run_id, status=status),
            final=True,
        )
