"""The sweep file: which training YAML to vary, how, against which metric.

A sweep file is a YAML mapping::

    base: vae_mnist.yaml              # the training YAML (relative to this file)
    epochs: 20                        # budget of every trial
    trials: 16                        # draws per grid point (Ray Tune's num_samples)
    metric: valid_objective           # a monitor channel, minimised (mode: min)
    scheduler: asha                   # asha (default), hyperband or fifo
    search_space:
      algorithm.learning_rate: loguniform(1e-4, 3e-3)
      model.nhid: [50, 100, 200]      # one of these, drawn per trial
      model.seed: range(5)            # every value: a grid
      model.posterior.mlp.layers.0.dim: grid(100, 200)

Keys of ``search_space`` are dotted paths into the base YAML's ``!obj:``
tree (``layers.0`` indexes a list). Values are:

``uniform(low, high)``, ``loguniform(low, high)``
    a float drawn per trial (log-uniformly for ``loguniform``);
``randint(low, high)``
    an integer in ``[low, high)`` drawn per trial (as Ray Tune's ``randint``);
``[a, b, ...]`` or ``choice(a, b, ...)`` or ``{choice: [a, b, ...]}``
    one of the values, drawn per trial;
``grid(a, b, ...)`` or ``{grid: [a, b, ...]}`` or ``range(...)``
    every value (as Python's ``range``), each with ``trials`` draws of the
    other keys;
anything else
    that value for every trial.

The values of a list or mapping form are YAML written in flow style and may
be whole objects (``{choice: [!obj:...Momentum {init_momentum: 0.5}, ...]}``).
Parsing checks everything it can before anything runs; errors name the file,
line and column.
"""

from __future__ import annotations

import ast
import difflib
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from pylearn_vae.config.yaml_parse import (
    MAX_DEPTH,
    BoundedSafeLoader,
    ConfigError,
    check_node_graph,
    dump,
)
from pylearn_vae.errors import ModelFileError, SweepSpecError
from pylearn_vae.utils.files import read_text_file

__all__ = ["Dimension", "SweepSpec", "SweepSpecError", "load_spec", "parse_spec", "SCHEDULERS"]

SCHEDULERS = ("asha", "hyperband", "fifo")
DISTRIBUTIONS = ("uniform", "loguniform", "randint")
LISTS = ("choice", "grid", "range")

#: Top-level keys: name -> (type, default); a default of ``...`` means required.
_KEYS = {
    "base": (str, ...),
    "search_space": (dict, ...),
    "epochs": (int, ...),
    "trials": (int, 1),
    "metric": (str, "valid_objective"),
    "mode": (str, "min"),
    "scheduler": (str, "asha"),
    "grace_period": (int, 1),
    "reduction_factor": (float, 3.0),
    "max_failures": (int, 2),
    "cpus_per_trial": (int, 1),
}

#: The most values one search-space key may list or range over, and the most
#: trials a whole sweep may plan (grid points times draws).
MAX_GRID_VALUES = 10_000
MAX_TRIALS = 100_000

#: The tag of a YAML scalar read as text (not a number, boolean or null).
_TEXT = "tag:yaml.org,2002:str"

_CALL = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", re.S)
_CALL_START = re.compile(r"^\s*[A-Za-z_]\w*\s*\(")


@dataclass(frozen=True)
class Dimension:
    """One key of the search space.

    ``kind`` is ``constant``, ``choice``, ``grid`` (``options`` holds YAML
    texts) or ``uniform``, ``loguniform``, ``randint`` (``low``/``high``).
    """

    key: str
    kind: str
    #: Where the key is written in the sweep file.
    where: str
    options: tuple[str, ...] = ()
    low: float | int | None = None
    high: float | int | None = None


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file (see the module docstring for its keys)."""

    path: Path
    text: str
    base: Path
    base_text: str
    epochs: int
    dimensions: tuple[Dimension, ...]
    trials: int = 1
    metric: str = "valid_objective"
    mode: str = "min"
    scheduler: str = "asha"
    grace_period: int = 1
    reduction_factor: float = 3.0
    max_failures: int = 2
    cpus_per_trial: int = 1
    where: dict = field(default_factory=dict, compare=False)


class _Composer(BoundedSafeLoader):
    """Composes nodes only (marks are kept); PyYAML's global loaders stay untouched."""


def compose(text: str, source: str):
    """The YAML node tree of ``text`` (anchors resolved to shared nodes)."""
    loader = None
    try:
        loader = _Composer(text)  # (checks the characters: a NUL byte is refused here)
        root = loader.get_single_node()
        if root is not None:
            check_node_graph(root, source)
        return root
    except ConfigError as exc:  # (too many values through aliases, or too deep)
        raise SweepSpecError(exc.detail, exc.where) from None
    except RecursionError:
        raise SweepSpecError(
            f"this YAML is nested more than {MAX_DEPTH} levels deep; flatten it", source
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SweepSpecError(f"invalid YAML: {exc.problem or exc}", locate(source, mark)) from None
    except yaml.YAMLError as exc:
        raise SweepSpecError(f"invalid YAML: {exc}", source) from None
    finally:
        if loader is not None:
            loader.dispose()


def locate(source: str, mark) -> str:
    """``source, line L, column C`` for a PyYAML mark (or just ``source``)."""
    if mark is None:
        return source
    return f"{source}, line {mark.line + 1}, column {mark.column + 1}"


def node_text(text: str, node) -> str:
    return text[node.start_mark.index : node.end_mark.index]


def _scalar(node, kind: type, source: str, key: str):
    where = locate(source, node.start_mark)
    if not isinstance(node, yaml.ScalarNode):
        raise SweepSpecError(f"{key} must be a single value, got a {_shape(node)}", where)
    raw = node.value
    name = "an integer" if kind is int else "a number"
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
            return value
    except ValueError:
        raise SweepSpecError(f"{key} must be {name}, got {_short(raw)}", where) from None
    if key == "metric" and node.tag != _TEXT:
        raise SweepSpecError(
            f"metric must be the name of a monitor channel (text), got {_short(raw)}, which YAML "
            "reads as a number, a boolean or null (quote it if it really is a channel name)",
            where,
        )
    return raw


def _cut(text: str, limit: int = 40) -> str:
    """``text`` for a message, cut to ``limit`` characters (a 5,000-digit number...)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _short(raw: str, limit: int = 40) -> str:
    """``raw`` quoted for a message, cut to ``limit`` characters."""
    return repr(raw) if len(raw) <= limit else f"{raw[:limit]!r}... ({len(raw):,} characters)"


def _shape(node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return f"value {_short(node.value)}"


def _literals(args: str, name: str, where: str) -> list:
    try:
        values = ast.literal_eval(f"[{args}]")
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        raise SweepSpecError(
            f"cannot read the arguments of {name}({_cut(args)}): write numbers or quoted "
            "strings separated by commas",
            where,
        ) from None
    return values


def _numbers(values: list, name: str, where: str, count: int, integers: bool = False) -> list:
    want = "integers" if integers else "numbers"
    ok = all(
        isinstance(v, int) and not isinstance(v, bool)
        if integers
        else isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in values
    )
    if len(values) != count or not ok:
        raise SweepSpecError(
            f"{name}() takes {count} {want}, got {', '.join(map(repr, values)) or 'nothing'}",
            where,
        )
    return values


def _call(key: str, name: str, args: str, where: str) -> Dimension:
    known = DISTRIBUTIONS + LISTS
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SweepSpecError(
            f"unknown search-space function {name}(){hint}; known: {', '.join(known)}", where
        )
    values = _literals(args, name, where)
    if name in ("uniform", "loguniform", "randint"):
        low, high = _numbers(values, name, where, 2, integers=name == "randint")
        if not low < high:
            raise SweepSpecError(f"{name}({low}, {high}): low must be below high", where)
        if name == "loguniform" and low <= 0:
            raise SweepSpecError(f"loguniform({low}, {high}): bounds must be positive", where)
        return Dimension(key, name, where, low=low, high=high)
    if name == "range":
        if not 1 <= len(values) <= 3:
            raise SweepSpecError(f"range() takes 1 to 3 integers, got {len(values)}", where)
        _numbers(values, name, where, len(values), integers=True)
        try:
            grid = range(*values)
        except ValueError as exc:  # a zero step
            raise SweepSpecError(f"range({_cut(args)}): {exc}", where) from None
        try:
            size = f"{len(grid):,}" if len(grid) > MAX_GRID_VALUES else ""
        except OverflowError:  # more values than a machine word counts
            size = "more than 2**63"
        if size:
            raise SweepSpecError(
                f"range({_cut(args)}) has {size} values, more than the "
                f"{MAX_GRID_VALUES:,} a sweep may try",
                where,
            )
        values = list(grid)
    if not values:
        raise SweepSpecError(f"{name}() needs at least one value", where)
    kind = "grid" if name == "range" else name
    return Dimension(key, kind, where, options=tuple(dump(v) for v in values))


def _options(text: str, nodes: list, key: str, where: str, source: str) -> tuple[str, ...]:
    if not nodes:
        raise SweepSpecError(f"{key}: the list of values is empty", where)
    options = []
    for node in nodes:
        if not isinstance(node, yaml.ScalarNode) and not node.flow_style:
            raise SweepSpecError(
                f"{key}: write each value on one line in flow style ({{...}} or [...])",
                locate(source, node.start_mark),
            )
        options.append(node_text(text, node))
    return tuple(options)


def _dimension(text: str, key_node, value, source: str) -> Dimension:
    """The dimension of one search-space entry, located at its key."""
    dimension = _read_value(text, key_node, value, source)
    return replace(dimension, where=locate(source, key_node.start_mark))


def _read_value(text: str, key_node, value, source: str) -> Dimension:
    where = locate(source, key_node.start_mark)
    if not isinstance(key_node, yaml.ScalarNode):
        raise SweepSpecError(
            f"a search-space key must be a dotted path, got a {_shape(key_node)}", where
        )
    key = key_node.value
    if not re.fullmatch(r"[A-Za-z_]\w*(\.(\w+))*", key):
        raise SweepSpecError(
            f"search-space key {key!r} is not a dotted path such as algorithm.learning_rate",
            where,
        )
    value_where = locate(source, value.start_mark)
    if isinstance(value, yaml.SequenceNode):
        return Dimension(
            key, "choice", value_where, _options(text, value.value, key, where, source)
        )
    if isinstance(value, yaml.MappingNode) and not value.tag.startswith("!"):
        keys = [k.value for k, _ in value.value]
        if len(keys) != 1 or keys[0] not in ("choice", "grid"):
            raise SweepSpecError(
                f"{key}: a mapping here must be {{choice: [...]}} or {{grid: [...]}}, got keys "
                f"{', '.join(map(str, keys)) or 'none'}",
                value_where,
            )
        inner = value.value[0][1]
        if not isinstance(inner, yaml.SequenceNode):
            raise SweepSpecError(f"{key}: {keys[0]} needs a list [...]", value_where)
        options = _options(text, inner.value, key, where, source)
        return Dimension(key, keys[0], value_where, options)
    if isinstance(value, yaml.ScalarNode) and value.style is None:
        match = _CALL.match(value.value)
        if match:
            return _call(key, match.group(1), match.group(2), value_where)
        if _CALL_START.match(value.value):
            raise SweepSpecError(
                f"{key}: {value.value!r} lacks its closing parenthesis", value_where
            )
    if not isinstance(value, yaml.ScalarNode) and not value.flow_style:
        raise SweepSpecError(f"{key}: write the value in flow style ({{...}})", value_where)
    return Dimension(key, "constant", value_where, (node_text(text, value),))


#: Limits of the top-level values: key -> (test, what the message says is expected).
_LIMITS = {
    "epochs": (lambda v: 1 <= v <= 1_000_000, "an integer from 1 to 1,000,000"),
    "trials": (lambda v: 1 <= v <= MAX_TRIALS, f"an integer from 1 to {MAX_TRIALS:,}"),
    "grace_period": (lambda v: 1 <= v <= 1_000_000, "an integer from 1 to 1,000,000"),
    "reduction_factor": (lambda v: 1 < v <= 1000, "a number above 1 and at most 1000"),
    "max_failures": (lambda v: 0 <= v <= 1000, "an integer from 0 to 1000"),
    "cpus_per_trial": (lambda v: 1 <= v <= 4096, "an integer from 1 to 4096"),
    "mode": (lambda v: v in ("min", "max"), "min or max"),
    "scheduler": (lambda v: v in SCHEDULERS, " or ".join(SCHEDULERS)),
}


def _top_level(root, source: str) -> tuple[dict, dict]:
    """The top-level values of a sweep file and where each key is written.

    Scalars are converted to their type in :data:`_KEYS`; ``search_space``
    stays a YAML node. Unknown, duplicate and missing keys are errors.
    """
    values: dict = {}
    where: dict = {}
    for key_node, value in root.value:
        here = locate(source, key_node.start_mark)
        if not isinstance(key_node, yaml.ScalarNode):
            raise SweepSpecError(f"a key must be a name, got a {_shape(key_node)}", here)
        key = key_node.value
        if key not in _KEYS:
            close = difflib.get_close_matches(str(key), list(_KEYS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SweepSpecError(
                f"unknown key {key!r}{hint}; known: {', '.join(_KEYS)}",
                here,
            )
        if key in values:
            raise SweepSpecError(f"duplicate key {key!r}", here)
        kind, _ = _KEYS[key]
        where[key] = here
        if kind is dict:
            if not isinstance(value, yaml.MappingNode) or value.tag.startswith("!"):
                raise SweepSpecError(f"{key} must be a mapping of dotted keys to values", here)
            values[key] = value
        else:
            values[key] = _scalar(value, kind, source, key)
    missing = [k for k, (_, default) in _KEYS.items() if default is ... and k not in values]
    if missing:
        raise SweepSpecError(f"missing key(s): {', '.join(missing)}", source)
    return values, where


def _dimensions(text: str, space, source: str, where: str) -> tuple[Dimension, ...]:
    """The dimensions of the ``search_space`` node (``where`` locates it)."""
    dimensions = []
    seen: set = set()
    for key_node, value in space.value:
        dimension = _dimension(text, key_node, value, source)
        if dimension.key in seen:
            raise SweepSpecError(
                f"duplicate key {dimension.key!r}", locate(source, key_node.start_mark)
            )
        seen.add(dimension.key)
        dimensions.append(dimension)
    if not dimensions:
        raise SweepSpecError("search_space is empty", where)
    return tuple(dimensions)


def _check_limits(values: dict, where: dict) -> None:
    """Refuse a top-level value outside its range (see :data:`_LIMITS`)."""
    for key, (ok, expected) in _LIMITS.items():
        # An absent key takes its default, which is always in range.
        if key in values and not ok(values[key]):
            raise SweepSpecError(
                f"{key} must be {expected}, got {_cut(repr(values[key]))}", where[key]
            )


def _check_size(values: dict, dimensions, where: dict) -> None:
    """Refuse a sweep whose grid points times draws exceed :data:`MAX_TRIALS`."""
    total = values.get("trials", 1)
    for dimension in dimensions:
        if dimension.kind == "grid":
            total *= len(dimension.options)
    if total > MAX_TRIALS:
        raise SweepSpecError(
            f"the sweep would run {total:,} trials (grid points times trials), more than "
            f"{MAX_TRIALS:,}",
            where["search_space"],
        )


#: The largest sweep file and base YAML read (a FIFO or /dev/zero is refused).
MAX_SWEEP_FILE_BYTES = 1 << 20
MAX_BASE_BYTES = 16 << 20


def _read_text(path: Path, what: str, where: str, limit: int) -> str:
    """The UTF-8 text of ``path``, else an error saying that ``what`` cannot be read."""
    try:
        return read_text_file(path, what, limit)
    except ModelFileError as exc:
        raise SweepSpecError(f"cannot read {exc}", where) from None


def parse_spec(text: str, source: str, base_dir: Path | None = None) -> SweepSpec:
    """Parse the text of a sweep file (``source`` names it in errors)."""
    root = compose(text, source)
    if not isinstance(root, yaml.MappingNode) or root.tag.startswith("!"):
        where = locate(source, root.start_mark) if root is not None else source
        raise SweepSpecError("a sweep file is a mapping with base, epochs and search_space", where)
    values, where = _top_level(root, source)
    dimensions = _dimensions(text, values["search_space"], source, where["search_space"])
    _check_limits(values, where)
    _check_size(values, dimensions, where)
    base_dir = base_dir if base_dir is not None else Path(".")
    try:
        base = (base_dir / values["base"]).resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte; a link loop (3.11)
        raise SweepSpecError(
            f"base {_short(values['base'])} is not a usable path: {exc}", where["base"]
        ) from None
    base_text = _read_text(base, "the base YAML", where["base"], MAX_BASE_BYTES)
    scalars = {k: v for k, v in values.items() if k not in ("base", "search_space")}
    return SweepSpec(
        path=Path(source),
        text=text,
        base=base,
        base_text=base_text,
        dimensions=dimensions,
        where=where,
        **scalars,
    )


def load_spec(path) -> SweepSpec:
    """Read and parse the sweep file at ``path``; ``base`` is relative to its folder."""
    path = Path(path)
    text = _read_text(path, "the sweep file", str(path), MAX_SWEEP_FILE_BYTES)
    return parse_spec(text, str(path), base_dir=path.parent)
