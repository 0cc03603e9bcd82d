"""The monitor: channel values over whole data sets, recorded after each epoch.

A channel is a symbolic scalar computed on a batch. The monitor evaluates all
channels of a data set with one compiled function, batch after batch, and
combines the batch values into an exact whole-set value:

* ``*_min`` / ``*_max`` channels take the minimum / maximum over batches;
* a ``*_std`` channel with a ``*_mean`` sibling is pooled exactly from the
  batch means and standard deviations;
* every other channel is a mean, weighted by batch size (so a smaller last
  batch counts for what it holds).

Records live on the model (``model.monitor``) and are saved with it.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np

from pylearn_vae.compile import function, is_jax_mode, resolve_mode
from pylearn_vae.utils.rng import register_rng, rng_updates, shared_noise

__all__ = [
    "Monitor",
    "MonitorChannel",
    "DEFAULT_MONITORING_BATCH_SIZE",
    "channel_expressions",
    "channel_names",
]

DEFAULT_MONITORING_BATCH_SIZE = 5000

#: Wall-clock channels: ``seconds_per_epoch`` (this package's older name) and
#: ``training_seconds_this_epoch`` (Pylearn2's) both hold the last epoch's
#: training time; ``total_seconds_last_epoch`` (Pylearn2's) the whole of the
#: previous epoch, monitoring and saves included.
_TIME_CHANNELS = ("seconds_per_epoch", "training_seconds_this_epoch", "total_seconds_last_epoch")


def _seconds_field(state: dict, key: str, missing: float | None = None) -> float:
    """``state[key]`` as a float (``missing`` if absent and given); ``ValueError``
    naming the field if it is not a number."""
    value = state.get(key, missing)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"monitor field {key!r} is {value!r}, expected a number")
    return float(value)


#: The most channels a stored monitor may hold (a run has a few dozen).
MAX_CHANNELS = 10_000
_RECORD_NAMES = ("val_record", "epoch_record", "batch_record", "example_record", "time_record")
_NUMBERS = (int, float, np.integer, np.floating)


def _is_number(value) -> bool:
    """A Python or NumPy number, or a 0-d numeric array (as a shared value's ``get_value()``)."""
    if isinstance(value, _NUMBERS):
        return True
    return type(value) is np.ndarray and value.ndim == 0 and value.dtype.kind in "biuf"


def _check_channel_names(names, field: str) -> None:
    """Refuse channel names that are not distinct strings, or too many of them
    (a file repeating one name 300,000 times kept the monitor readers busy for hours)."""
    if len(names) > MAX_CHANNELS:
        raise ValueError(
            f"monitor field {field!r} lists {len(names):,} channels, more than {MAX_CHANNELS:,}"
        )
    for name in names:
        if not isinstance(name, str):
            raise ValueError(
                f"monitor field {field!r} holds a {type(name).__name__}, not a channel name"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"monitor field {field!r} names a channel more than once")


def _check_unpickled_channels(channels) -> None:
    """The channels of a monitor read from a pickle: named, and flat lists of numbers
    of one length (a value that is a list of lists could be a DAG that never
    finishes printing)."""
    if not isinstance(channels, dict):
        raise ValueError("the monitor's channels are not a mapping")
    _check_channel_names(list(channels), "channels")
    for name, channel in channels.items():
        if type(channel) is not MonitorChannel or channel.__dict__.get("name") != name:
            raise ValueError(f"monitor channel {name!r} is not a channel of that name")
        lengths = set()
        for key in _RECORD_NAMES:
            record = channel.__dict__.get(key)
            if type(record) is not list or not all(map(_is_number, record)):
                raise ValueError(f"monitor channel {name!r}: {key} is not a list of numbers")
            lengths.add(len(record))
        if len(lengths) != 1:
            raise ValueError(f"monitor channel {name!r}: its records differ in length")


class MonitorChannel:
    """The history of one channel, in Pylearn2's layout."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.val_record: list[float] = []
        self.epoch_record: list[int] = []
        self.batch_record: list[int] = []
        self.example_record: list[int] = []
        self.time_record: list[float] = []

    def __repr__(self) -> str:
        last = self.val_record[-1] if self.val_record else None
        return f"MonitorChannel({self.name!r}, {len(self.val_record)} values, last={last})"


def _combine(names, batch_values, sizes) -> dict:
    """Exact whole-set values from per-batch channel values."""
    values = np.asarray(batch_values, dtype=np.float64)  # (batches, channels)
    weights = np.asarray(sizes, dtype=np.float64)
    weights = weights / weights.sum()
    out = {}
    for j, name in enumerate(names):
        column = values[:, j]
        if name.endswith("_min"):
            out[name] = float(column.min())
        elif name.endswith("_max"):
            out[name] = float(column.max())
        else:
            out[name] = float(weights @ column)
    for j, name in enumerate(names):
        sibling = name[: -len("_std")] + "_mean" if name.endswith("_std") else None
        if sibling in names:
            means = values[:, names.index(sibling)]
            stds = values[:, j]
            pooled = weights @ (stds**2 + means**2) - out[sibling] ** 2
            out[name] = float(np.sqrt(max(pooled, 0.0)))
    return out


def channel_expressions(model, cost, X) -> OrderedDict:
    """The per-batch channels of ``model`` trained with ``cost`` on the batch ``X``:
    ``objective``, then the cost's channels, then the model's (name -> expression).

    All channels of a batch see the same noise (and so share the model's
    forward pass): see :func:`~pylearn_vae.utils.rng.shared_noise`.
    """
    exprs = OrderedDict()
    with shared_noise() as noise:
        exprs["objective"] = cost.expr(model, X)
        noise.restart()
        exprs.update(cost.get_monitoring_channels(model, X))
        noise.restart()
        model_channels = model.get_monitoring_channels(X)
    for name, expr in model_channels.items():
        if name in exprs:
            raise ValueError(f"monitor channel {name!r} is defined by both the cost and the model")
        exprs[name] = expr
    return exprs


def channel_names(dataset_names, batch_names) -> list[str]:
    """The channels a monitor records for data sets named ``dataset_names`` (``""``
    for a single unnamed set) whose batch channels are ``batch_names``: each
    prefixed by its set's name, then the counters and timings (the training
    algorithm adds its own values, such as ``learning_rate``)."""
    prefixes = [f"{key}_" if key else "" for key in dataset_names]
    names = [p + n for p in prefixes for n in batch_names]
    return names + ["epochs_seen", "batches_seen", "examples_seen", *_TIME_CHANNELS]


class Monitor:
    """Computes and records monitoring channels for a model.

    Parameters
    ----------
    model : Model
        The model whose channels are monitored; the monitor is stored as
        ``model.monitor``.
    """

    def __init__(self, model) -> None:
        self.model = model
        self.channels: OrderedDict[str, MonitorChannel] = OrderedDict()
        self._epochs_seen = 0
        self._batches_seen = 0
        self._examples_seen = 0
        self._last_epoch_seconds = 0.0
        self._last_total_seconds = 0.0
        self._datasets: dict = {}
        self._batch_size = DEFAULT_MONITORING_BATCH_SIZE
        self._functions: dict = {}
        self._names: list[str] = []
        self._build = None
        self._extra = None
        #: Shared RNGs of the compiled monitoring functions, by name.
        self.shared_rngs: dict = {}

    @classmethod
    def get_monitor(cls, model) -> Monitor:
        """Return ``model.monitor``, creating it if needed (Pylearn2's idiom)."""
        if getattr(model, "monitor", None) is None:
            model.monitor = cls(model)
        return model.monitor

    # -- counters ----------------------------------------------------------
    def get_epochs_seen(self) -> int:
        return self._epochs_seen

    def get_batches_seen(self) -> int:
        return self._batches_seen

    def get_examples_seen(self) -> int:
        return self._examples_seen

    def report_batch(self, num_examples: int) -> None:
        self._batches_seen += 1
        self._examples_seen += int(num_examples)

    def report_epoch(self, seconds: float = 0.0) -> None:
        """Count an epoch whose training (the SGD passes alone) took ``seconds``."""
        self._epochs_seen += 1
        self._last_epoch_seconds = float(seconds)

    def report_epoch_total(self, seconds: float) -> None:
        """Record the whole of an epoch's processing: training, monitoring,
        extensions and saves. As in Pylearn2, the ``total_seconds_last_epoch``
        channel shows it at the next monitoring, since the monitoring that
        ends an epoch is part of what it measures."""
        self._last_total_seconds = float(seconds)

    def channel_value(self, name: str) -> float:
        """Last recorded value of channel ``name``."""
        if name not in self.channels:
            raise KeyError(
                f"no monitor channel named {name!r}; available: {', '.join(sorted(self.channels))}"
            )
        record = self.channels[name].val_record
        if not record:
            raise ValueError(f"monitor channel {name!r} has no value yet")
        return record[-1]

    # -- set-up -----------------------------------------------------------
    def setup(
        self, datasets, cost, batch_size=None, mode=None, extra=None, precompile=False
    ) -> None:
        """Prepare channels for ``datasets`` (a dataset or a dict name -> dataset).

        ``cost`` gives ``objective`` and its own channels; the model adds
        its channels. ``extra`` is a callable returning ``{name: float}`` of
        values computed in Python (learning rate, momentum, ...). With
        ``precompile`` (the function is first called after other work), a
        first run may compile it in a second process
        (:func:`pylearn_vae.speedups.second_process_compiles`).
        """
        if datasets is None:
            datasets = {}
        elif not isinstance(datasets, dict):
            datasets = {"": datasets}
        self._datasets = dict(datasets)
        if batch_size is not None:
            if int(batch_size) < 1:
                raise ValueError(f"monitoring_batch_size must be >= 1, got {batch_size}")
            self._batch_size = int(batch_size)
        self._extra = extra
        self._mode = resolve_mode(mode)
        self._static = is_jax_mode(self._mode)
        model = self.model
        space = model.get_input_space()

        def build(batch_size_or_none):
            X = space.make_theano_batch("monitor_X", batch_size=batch_size_or_none)
            exprs = channel_expressions(model, cost, X)
            outputs = list(exprs.values())
            for rng in rng_updates(outputs):
                register_rng(self.shared_rngs, rng)
            return list(exprs), function(
                [X], outputs, mode=self._mode, precompile=precompile and bool(self._datasets)
            )

        self._build = build
        self._functions = {}
        if not self._static:
            self._names, self._functions[None] = build(None)
        all_names = channel_names(self._datasets, self._batch_channel_names())
        all_names += list((extra() if extra else {}).keys())
        for name in all_names:
            self.channels.setdefault(name, MonitorChannel(name))

    def _batch_channel_names(self) -> list[str]:
        if not self._names:
            # JAX: names come from building (not compiling) one graph.
            self._names, fn = self._build(self._batch_size)
            self._functions[self._batch_size] = fn
        return self._names

    def _function_for(self, size: int):
        key = size if self._static else None
        if key not in self._functions:
            _, self._functions[key] = self._build(key)
        return self._functions[key]

    # -- evaluation ---------------------------------------------------------
    def evaluate(self, dataset) -> dict:
        """Whole-set channel values of ``dataset`` (no recording)."""
        X = dataset.get_design_matrix()
        n = X.shape[0]
        batch_values, sizes = [], []
        for start in range(0, n, self._batch_size):
            batch = np.ascontiguousarray(X[start : start + self._batch_size])  # see evaluation
            batch_values.append([float(v) for v in self._function_for(len(batch))(batch)])
            sizes.append(len(batch))
        return _combine(self._names, batch_values, sizes)

    def __call__(self) -> OrderedDict:
        """Compute every channel, append it to the records and return the values."""
        now = time.time()
        values = OrderedDict()
        for key, dataset in self._datasets.items():
            prefix = f"{key}_" if key else ""
            for name, value in self.evaluate(dataset).items():
                values[prefix + name] = value
        values["epochs_seen"] = self._epochs_seen
        values["batches_seen"] = self._batches_seen
        values["examples_seen"] = self._examples_seen
        values["seconds_per_epoch"] = self._last_epoch_seconds
        values["training_seconds_this_epoch"] = self._last_epoch_seconds
        values["total_seconds_last_epoch"] = self._last_total_seconds
        if self._extra is not None:
            values.update(self._extra())
        for name, value in values.items():
            channel = self.channels.setdefault(name, MonitorChannel(name))
            channel.val_record.append(value)
            channel.epoch_record.append(self._epochs_seen)
            channel.batch_record.append(self._batches_seen)
            channel.example_record.append(self._examples_seen)
            channel.time_record.append(now)
        return values

    def format_report(self) -> str:
        """The last values as a Pylearn2-style block."""
        lines = [
            "Monitoring step:",
            f"\tEpochs seen: {self._epochs_seen}",
            f"\tBatches seen: {self._batches_seen}",
            f"\tExamples seen: {self._examples_seen}",
        ]
        for name in sorted(self.channels):
            record = self.channels[name].val_record
            if record:
                value = record[-1]
                text = f"{value:d}" if isinstance(value, int) else f"{value:.6g}"
                lines.append(f"\t{name}: {text}")
        return "\n".join(lines)

    # -- state (model files and checkpoints) ------------------------------
    _RECORDS = (
        ("epoch_record", np.int64, int),
        ("batch_record", np.int64, int),
        ("example_record", np.int64, int),
        ("time_record", np.float64, float),
    )

    def state_dict(self) -> dict:
        """The counters and every channel's history, as numbers, strings and arrays."""
        channels = {}
        for name, channel in self.channels.items():
            values = channel.val_record
            is_int = all(isinstance(v, int | np.integer) for v in values)
            channels[name] = {
                "val_record": np.asarray(values, dtype=np.int64 if is_int else np.float64)
            }
            for key, dtype, _ in self._RECORDS:
                channels[name][key] = np.asarray(getattr(channel, key), dtype=dtype)
        return {
            "epochs_seen": self._epochs_seen,
            "batches_seen": self._batches_seen,
            "examples_seen": self._examples_seen,
            "last_epoch_seconds": self._last_epoch_seconds,
            "last_total_seconds": self._last_total_seconds,
            "channel_order": list(self.channels),
            "channels": channels,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned; ``ValueError`` names a malformed field."""
        counters = {}
        for key in ("epochs_seen", "batches_seen", "examples_seen"):
            value = state.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 62:
                raise ValueError(f"monitor counter {key!r} is {value!r}, expected an integer >= 0")
            counters[key] = value
        seconds = _seconds_field(state, "last_epoch_seconds")
        # Files written before the field existed have no total: 0, as before any epoch.
        total = _seconds_field(state, "last_total_seconds", missing=0.0)
        order, stored = state.get("channel_order"), state.get("channels")
        if not isinstance(order, list) or not isinstance(stored, dict):
            raise ValueError("monitor fields 'channel_order' and 'channels' are malformed")
        _check_channel_names(order, "channel_order")
        restored = {}
        for name in order:
            data = stored.get(name) if isinstance(name, str) else None
            if not isinstance(data, dict):
                raise ValueError(f"monitor channel {name!r} is listed but not stored")
            channel = MonitorChannel(name)
            values = np.asarray(data.get("val_record"))
            if values.ndim != 1 or values.dtype.kind not in "iuf":
                raise ValueError(f"monitor channel {name!r}: val_record is not a list of numbers")
            channel.val_record = (
                [int(v) for v in values]
                if values.dtype.kind in "iu"
                else [float(v) for v in values]
            )
            for key, _, convert in self._RECORDS:
                record = np.asarray(data.get(key))
                if record.shape != values.shape or record.dtype.kind not in "iuf":
                    raise ValueError(f"monitor channel {name!r}: {key} does not match val_record")
                if record.dtype.kind == "f" and not np.isfinite(record).all():
                    raise ValueError(f"monitor channel {name!r}: {key} holds NaN or infinity")
                setattr(channel, key, [convert(v) for v in record])
            restored[name] = channel
        self._epochs_seen = counters["epochs_seen"]
        self._batches_seen = counters["batches_seen"]
        self._examples_seen = counters["examples_seen"]
        self._last_epoch_seconds = seconds
        self._last_total_seconds = total
        for name, channel in restored.items():
            self.channels[name] = channel

    # -- pickling -----------------------------------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        # Compiled functions, graph builders and data sets are not saved.
        for key in ("_functions", "_build", "_extra", "_datasets", "_mode", "shared_rngs"):
            state.pop(key, None)
        return state

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        _check_unpickled_channels(self.__dict__.get("channels"))
        self._functions = {}
        self._build = None
        self._extra = None
        self._datasets = {}
        self.shared_rngs = {}
