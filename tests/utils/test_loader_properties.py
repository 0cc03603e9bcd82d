"""Hostile inputs for the four loaders, generated with Hypothesis.

Each loader promises that any input either loads or is refused with the
package's own error (a subclass of :class:`~pylearn_vae.errors.PylearnVAEError`)
whose message is one short printable line naming the input, in bounded time,
without running code from the input or touching other files. The tests
generate inputs and check that promise for

* ``.h5`` model files and checkpoints: a real file changed with h5py (datasets
  replaced, deleted, compressed or declared larger than stored, attributes of
  every type, random JSON in the groups' ``json`` attributes, random YAML in
  ``model_yaml``, links, and sizes in the YAML that only a padding dataset has);
* ``.pkl`` model files: a real model's pickle with bytes flipped, cut, inserted
  or spliced, and random opcode programs built with
  :mod:`tests.helpers.hostile_pickles`;
* training YAML, parsed, and built as the YAML stored in a model file is
  (``restrict_to``);
* sweep files.

Runs are reproducible (``derandomize=True``, no example database). Inputs that
broke a promise when this module was written are pinned with ``@example``:
they are tried first, and fail at once, without a search, if the promise
breaks again.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import pickletools
import re
import shutil
import struct
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pylearn_vae import persistence
from pylearn_vae.config import yaml_parse
from pylearn_vae.costs.vae import VAECriterion
from pylearn_vae.datasets.dense_design_matrix import DenseDesignMatrix
from pylearn_vae.errors import ConfigError, ModelFileError, PylearnVAEError, SweepSpecError
from pylearn_vae.monitor import Monitor, MonitorChannel
from pylearn_vae.persistence import stored_yaml
from pylearn_vae.persistence.stored_yaml import MODEL_PACKAGES
from pylearn_vae.speedups.threads import ThreadChooser
from pylearn_vae.sweep.spec import SweepSpec, parse_spec
from pylearn_vae.termination_criteria import EpochCounter
from pylearn_vae.train import Train
from pylearn_vae.training_algorithms.learning_rule import Momentum
from pylearn_vae.training_algorithms.sgd import SGD
from tests.helpers import hostile_pickles as hp
from tests.helpers.audit import ACTIONS, outside_effects, recording
from tests.helpers.configs import BASE_YAML, MODEL_YAML
from tests.helpers.models import binary_data, make_vae

#: Seconds one load may take (generous: the 2-core hosts run other work too).
TIME_LIMIT = 5.0
#: Characters an error message may have, beyond 8 per byte of input (an
#: escaped control character takes 4): a message quotes the input, it does
#: not multiply it.
MESSAGE_SLACK = 100_000
#: Bytes an ``.h5`` load may allocate (traced), beyond 16 per byte of the file.
MEMORY_SLACK = 4 << 20

# Every strategy below is drawn ``max_examples`` times per test; the numbers
# keep the module under a minute on a warm 2-core host.
_COMMON = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
}


def _attempt(load, error_type: type, where: str, size: int):
    """``load()``'s result, or the ``error_type`` it raised, after checking the promise.

    Any other exception propagates (Hypothesis reports it with the input).
    """
    start = time.perf_counter()
    try:
        result = load()
    except error_type as exc:
        result = exc
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_LIMIT, f"the loader took {elapsed:.1f} s"
    if isinstance(result, BaseException):
        assert isinstance(result, PylearnVAEError)
        message = str(result)
        assert len(message) <= MESSAGE_SLACK + 8 * size, (
            f"a message of {len(message):,} characters for {size:,} bytes of input: "
            f"{message[:300]!r}..."
        )
        assert message.isprintable(), repr(message[:1000])
        assert where in message, message[:1000]
    return result


@contextlib.contextmanager
def _traced_peak():
    """The peak of traced allocations (NumPy's included) in the block, in ``box[0]``."""
    already = tracemalloc.is_tracing()
    if already:
        tracemalloc.reset_peak()
    else:
        tracemalloc.start()
    box: list[int] = []
    try:
        yield box
    finally:
        box.append(tracemalloc.get_traced_memory()[1])
        if not already:
            tracemalloc.stop()


def _acted(events) -> list:
    """Audit events that mean code ran (a process, a shell, a compile, a library)."""
    return [(event, arg) for event, arg in events if event in ACTIONS]


def _finite(model) -> bool:
    """Whether a loaded object's parameters (if it is a model) are finite."""
    getter = getattr(model, "get_params", None)
    if getter is None or isinstance(model, type):
        return True
    return all(np.isfinite(p.get_value()).all() for p in getter())


# The tests run with subnormal floats flushed to zero (tests/conftest.py), in
# which Hypothesis cannot make subnormal floats.
_floats = st.floats(allow_subnormal=False)


# --- text pieces shared by the YAML, sweep and HDF5 strategies ---------------------

#: Characters a terminal or a parser may choke on.
CONTROL = (
    "\x00",
    "\x07",
    "\x1b[2J",
    "\x7f",
    "\x85",
    "\u2028",
    "\u202e",
    "\ufeff",
    "\ud800",
    "\r",
    "\t",
    "\x0c",
    "\U0010ffff",
)
MODEL_CLASSES = (
    "pylearn_vae.models.vae.VAE",
    "pylearn_vae.models.vae.prior.DiagonalGaussianPrior",
    "pylearn_vae.models.vae.conditional.BernoulliVector",
    "pylearn_vae.models.vae.conditional.DiagonalGaussian",
    "pylearn_vae.models.mlp.MLP",
    "pylearn_vae.models.mlp.RectifiedLinear",
    "pylearn_vae.models.mlp.Linear",
    "pylearn_vae.models.mlp.Sigmoid",
    "pylearn_vae.space.VectorSpace",
    "pylearn_vae.space.Conv2DSpace",
    "pylearn_vae.space.CompositeSpace",
)
FOREIGN_CALLABLES = (
    "os.system",
    "builtins.eval",
    "pylearn_vae.train.Train",
    "pylearn_vae.persistence.load",
    "pylearn2.models.mlp.MLP",
    "pylearn_vae.models.vae.VAE.__init__",
    "pylearn_vae.models..vae.VAE",
    "pylearn_vae.models.vae.__init__.VAE",
    "pylearn_vae.space.np",
    "",
)
TAGS = (
    *(f"!obj:{name} " for name in MODEL_CLASSES + FOREIGN_CALLABLES),
    "!pkl: ",
    "!import ",
    "!import:os.path ",
    "!float ",
    "!!python/object/apply:os.system ",
    "!!python/name:os.system ",
    "!!timestamp ",
    "!!bool ",
    "!!float ",
    "!!int ",
    "!!binary ",
    "!!set ",
    "!!omap ",
    "!!str ",
    "!!null ",
    "!<tag:yaml.org,2002:int> ",
    "!<!obj:pylearn_vae.space.VectorSpace> ",
    "!%6Fbj:pylearn_vae.space.VectorSpace ",
    "!%1B[2J ",
    "!%ZZ ",
    "!%E2%80%A8 ",
    "%TAG ! tag:yaml.org,2002:\n---\n",
    "%TAG !e! tag:example.com,2000:%FF\n---\n!e!x ",
    "%YAML 1.1\n---\n",
    "%YAML 9.9\n---\n",
)
NUMBERS = (
    "0",
    "-1",
    "3",
    "12",
    "12.5",
    "1e3",
    "1e400",
    "-1e400",
    ".inf",
    "-.inf",
    ".nan",
    "99999999999999999999",
    "0o7",
    "0x",
    "1_000",
    "190:20:30",
    "2020-99-99",
    "2020-01-01 10:00:00 +99:00",
    "2020-01-01T25:00:00",
    "abc",
    "maybe",
    "yes",
    "~",
    "null",
    "${HOME}",
    "$HOME",
    "${}",
)
STRUCTURE = (
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    ":",
    "- ",
    "? ",
    "\n",
    "\n  ",
    "\n    - ",
    "---\n",
    "...\n",
    "|\n  ",
    ">-\n  ",
    " #c\n",
    "'",
    '"',
    "\\",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: *a",
    "<<: ",
    "&a [*a]",
    "nvis: ",
    "dim: ",
    "layer_name: ",
    "irange: ",
    "seed: ",
    "a",
)


def _long(prefix: str, unit: str, count: int, suffix: str = "", closing: str = "") -> str:
    return prefix + unit * count + suffix + closing * count


def _longs(*specs):
    """Long texts, each given as ``(prefix, unit, count[, suffix[, closing]])`` (so that
    Hypothesis prints the spec, not the text)."""
    return st.sampled_from(specs).map(lambda spec: _long(*spec))


long_numbers = _longs(
    ("1", "0", 400, ".5"),
    ("", "9", 5000),
    ("0x", "f", 5000),
    ("0b", "1", 20000),
    ("1", ":59", 3000),
)
deep = st.one_of(
    _longs(
        ("", "[", 99, "", "]"),
        ("", "[", 101),
        ("", "{a: ", 101),
        ("", "- ", 150),
        ("", "- ", 3000),
        ("", "!obj:pylearn_vae.space.VectorSpace {dim: ", 120),
    ),
    st.just(150).map(lambda n: "".join(f"\n{'  ' * i}k{i}:" for i in range(n))),
)


def _laughs(levels: int) -> str:
    """A "billion laughs" document: ``levels`` lists of ten aliases of the one before."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "{" + ", ".join(lines) + "}"


_tokens = st.one_of(
    st.sampled_from(STRUCTURE),
    st.sampled_from(TAGS),
    st.sampled_from(NUMBERS),
    long_numbers,
    st.sampled_from(CONTROL),
    deep,
    st.integers(1, 7).map(_laughs),
    st.text(max_size=4),
)
_soup = st.lists(_tokens, max_size=30).map("".join)

_scalars = st.one_of(
    st.sampled_from(NUMBERS),
    long_numbers,
    st.integers(-3, 20).map(str),
    st.text(max_size=8).map(json.dumps),
    st.sampled_from(["'h'", '"a\\x1bb"', '"\\0"', "true", "[]", "{}", "''"]),
)
_keys = st.sampled_from(
    ["nvis", "nhid", "dim", "layer_name", "irange", "seed", "layers", "mlp", "name", "a", "<<"]
)


def _flow_node(kind: str, name: str, children: list[tuple[str, str]]) -> str:
    """A flow-style YAML node of ``kind`` over ``(key, value)`` children."""
    mapping = "{" + ", ".join(f"{k}: {v}" for k, v in children) + "}"
    if kind == "list":
        return "[" + ", ".join(v for _, v in children) + "]"
    if kind == "object":
        return f"!obj:{name} {mapping}"
    label = "ab"[len(name) % 2]
    if kind == "anchor":
        return f"&{label} " + (children[0][1] if children else "")
    if kind == "alias":
        return f"*{label}"
    return mapping


def _flow(children):
    """Flow-style YAML nodes: lists, mappings, tagged objects, anchors and aliases."""
    return st.builds(
        _flow_node,
        st.sampled_from(["list", "mapping", "object", "anchor", "alias"]),
        st.sampled_from(MODEL_CLASSES + FOREIGN_CALLABLES),
        st.lists(st.tuples(_keys, children), max_size=4),
    )


_structured = st.recursive(_scalars, _flow, max_leaves=12)


def _insert(data, pieces):
    """``data`` (text or bytes) with each ``(position, piece)`` inserted (positions
    taken modulo its length)."""
    for position, piece in pieces:
        at = position % (len(data) + 1)
        data = data[:at] + piece + data[at:]
    return data


def _corrupted(base):
    """``base`` (a strategy of texts) with a few tokens inserted at random places."""
    return st.tuples(base, st.lists(st.tuples(st.integers(0, 10**6), _tokens), max_size=3)).map(
        lambda t: _insert(*t)
    )


_model_yaml_edits = _corrupted(st.just(MODEL_YAML))
#: YAML-ish text: token soup, random flow nodes, the real model YAML with tokens inserted.
yaml_texts = st.one_of(_soup, _structured, _corrupted(_structured), _model_yaml_edits)


# --- training YAML -------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_modules():
    """Import what building a model YAML imports, so that a build opens no module files."""
    yaml_parse.load(MODEL_YAML, restrict_to=MODEL_PACKAGES)


@settings(max_examples=600, **_COMMON)
@given(text=yaml_texts)
@example(text=MODEL_YAML)
@example(text="a: 2020-99-99")
@example(text="a: !!float abc")
@example(text="a: !!bool maybe")
@example(text="a: !!timestamp abc")
def test_training_yaml_parses_or_is_a_config_error(model_modules, text):
    size = len(text.encode("utf-8", "surrogatepass"))
    with recording() as events:
        parsed = _attempt(
            lambda: yaml_parse.load(text, source="x.yaml", instantiate=False),
            ConfigError,
            "x.yaml",
            size,
        )
        built = _attempt(
            lambda: yaml_parse.load(text, source="x.yaml", restrict_to=MODEL_PACKAGES),
            ConfigError,
            "x.yaml",
            size,
        )
    assert outside_effects(events, "x.yaml") == []
    if text == MODEL_YAML:
        assert isinstance(parsed, yaml_parse.ObjectProxy)
        assert [p.get_value().shape for p in built.get_params()][:2] == [(12, 5), (5,)]


# --- sweep files -------------------------------------------------------------------

SWEEP_SOURCE = "s.yaml"
VALID_SWEEP = """\
base: base.yaml
epochs: 4
trials: 3
search_space:
  algorithm.learning_rate: loguniform(1e-4, 3e-3)
  model.nhid: [2, 3, 1e1]
  model.seed: range(1, 7, 2)
  model.conditional.mlp.layers.0.dim: {grid: [8, 16]}
"""
_TOP_KEYS = (
    "base",
    "search_space",
    "epochs",
    "trials",
    "metric",
    "mode",
    "scheduler",
    "grace_period",
    "reduction_factor",
    "max_failures",
    "cpus_per_trial",
)
_BASES = (
    "base.yaml",
    "missing.yaml",
    "''",
    "sub",
    "fifo.yaml",
    "loop.yaml",
    "binary.yaml",
    "big.yaml",
    "/dev/zero",
    '"base\\0.yaml"',
    '"base.yaml\\x1b[2J"',
    "a" * 300,
    "base.yaml/x",
    "[base.yaml]",
    "{a: 1}",
    "!obj:os.system {command: 'touch pwned'}",
    "*a",
    "&a base.yaml",
)
_ARGS = (
    "1",
    "-1",
    "0",
    "3",
    "1e-4",
    "1e400",
    "-1e400",
    "'a'",
    "True",
    "None",
    "10**100",
    "2**64",
    "9223372036854775808",
    "x",
    "lambda: 0",
    "__import__('os').system('touch pwned')",
    "...",
    "1j",
    "b'a'",
    "{1: 2}",
    "float('nan')",
)
_CALLS = ("uniform", "loguniform", "randint", "choice", "grid", "range", "logunifrom", "eval")
_arguments = st.one_of(
    st.sampled_from(_ARGS),
    _longs(("1", "0", 5000), ("", "(", 60), ("", "[", 200, "", "]"), ("", "-", 3000, "1")),
)
_sweep_values = st.one_of(
    st.tuples(st.sampled_from(_CALLS), st.lists(_arguments, max_size=4)).map(
        lambda t: f"{t[0]}({', '.join(t[1])})"
    ),
    st.sampled_from(["uniform(1, 2", "grid()", "range(0)", "range(1, 10**30)", "range(0, 1, 0)"]),
    st.lists(_scalars, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
    st.tuples(st.sampled_from(["choice", "grid", "pick"]), st.lists(_scalars, max_size=3)).map(
        lambda t: f"{{{t[0]}: [{', '.join(t[1])}]}}"
    ),
    st.sampled_from(["\n    - 1\n    - 2", "{grid: 3}", "{}", "[]", "|\n    a"]),
    _structured,
)
_space_keys = st.one_of(
    st.sampled_from(
        ["model.nhid", "algorithm.learning_rate", "model..x", "0", "a" * 200, "[a]", "x\x1b"]
    ),
    st.from_regex(r"[a-z_]{1,6}(\.[a-z0-9_]{1,6}){0,3}", fullmatch=True),
)
_space = st.lists(st.tuples(_space_keys, _sweep_values), max_size=4).map(
    lambda items: "\n" + "".join(f"  {k}: {v}\n" for k, v in items)
)
_top_values = {
    "base": st.sampled_from(_BASES),
    "search_space": _space,
}
_scalar_top = st.one_of(
    st.sampled_from(NUMBERS), long_numbers, st.sampled_from(["min", "max", "asha", "fifo"])
)


def _sweep_line(key: str):
    return _top_values.get(key, _scalar_top).map(lambda value: f"{key}: {value}\n")


_sweep_lines = st.sampled_from(_TOP_KEYS + ("epoch", "", "\x1b")).flatmap(_sweep_line)
#: Sweep files: the keys of a sweep with random values, token soup, and both corrupted.
sweep_texts = st.one_of(
    st.lists(_sweep_lines, max_size=8).map("".join),
    _corrupted(st.lists(_sweep_lines, max_size=8).map("".join)),
    _corrupted(st.just(VALID_SWEEP)),
    _soup,
)


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory) -> Path:
    """A base YAML, and files a ``base:`` must not hang on: a FIFO, a link loop, a folder,
    non-UTF-8 bytes and a file larger than a base may be."""
    folder = tmp_path_factory.mktemp("sweeps")
    (folder / "base.yaml").write_text(BASE_YAML)
    os.mkfifo(folder / "fifo.yaml")
    (folder / "loop.yaml").symlink_to("loop.yaml")
    (folder / "sub").mkdir()
    (folder / "binary.yaml").write_bytes(b"\xff\xfe\x00base")
    with open(folder / "big.yaml", "wb") as handle:
        handle.truncate((16 << 20) + 1)
    return folder


@settings(max_examples=600, **_COMMON)
@given(text=sweep_texts)
@example(text=VALID_SWEEP)
@example(text=VALID_SWEEP.replace("base.yaml", '"base\\0.yaml"'))
@example(text=VALID_SWEEP.replace("base.yaml", "loop.yaml"))
@example(text="\x00")
def test_sweep_file_parses_or_is_a_sweep_spec_error(sweep_folder, text):
    before = sorted(os.listdir(sweep_folder))
    with recording() as events:
        spec = _attempt(
            lambda: parse_spec(text, SWEEP_SOURCE, sweep_folder),
            SweepSpecError,
            SWEEP_SOURCE,
            len(text.encode("utf-8", "surrogatepass")),
        )
    # (ast.literal_eval reads the arguments of grid(...) and the like: "compile".)
    assert [e for e in _acted(events) if e[0] != "compile"] == []
    assert sorted(os.listdir(sweep_folder)) == before
    if text == VALID_SWEEP:
        assert isinstance(spec, SweepSpec)
        assert [d.kind for d in spec.dimensions] == ["loguniform", "choice", "grid", "grid"]
        assert spec.base_text == BASE_YAML


# --- pickles -----------------------------------------------------------------------

#: What a model pickle may name, and some names it may not.
_GLOBALS = (
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("numpy.random._mt19937", "MT19937"),
    ("numpy.random.bit_generator", "SeedSequence"),
    ("pytensor.tensor.sharedvar", "TensorSharedVariable"),
    ("pytensor.tensor.type", "TensorType"),
    ("pytensor.link.basic", "Container"),
    ("pylearn_vae.monitor", "Monitor"),
    ("pylearn_vae.monitor", "MonitorChannel"),
    ("pylearn_vae.utils.rng", "SymbolicRNG"),
    ("pylearn_vae.models.vae", "VAE"),
    ("pylearn_vae.models.mlp", "MLP"),
    ("pylearn_vae.models.layers.linear", "RectifiedLinear"),
    ("pylearn_vae.models.vae.prior", "DiagonalGaussianPrior"),
    ("pylearn_vae.space", "VectorSpace"),
    ("os", "system"),
    ("builtins", "getattr"),
    ("pylearn_vae.space", "np.f2py.os.system"),
    ("pylearn2.models.mlp", "MLP"),
    ("pylearn_vae.models.vae.__init__", "VAE"),
)
_f4 = hp.call(
    hp.stack_global("numpy", "dtype"), hp.tup(hp.text("f4"), pickle.NEWFALSE, pickle.NEWTRUE)
)


def _global(pair) -> bytes:
    return hp.stack_global(*pair)


def _binbytes(data: bytes) -> bytes:
    return pickle.SHORT_BINBYTES + bytes([len(data)]) + data


def _dag(depth: int, leaf: bytes, make: bytes) -> bytes:
    """A list or tuple DAG: level i holds level i-1 twice (2**depth leaves in a few bytes
    a level), when it starts with an empty memo (else it mixes in what the memo holds)."""
    ops = leaf + pickle.MEMOIZE + pickle.POP
    for i in range(1, depth):
        get = pickle.BINGET + bytes([i - 1])
        ops += pickle.MARK + get + get + make + pickle.MEMOIZE + pickle.POP
    return ops + pickle.BINGET + bytes([depth - 1])


_pickle_leaves = st.one_of(
    st.text(max_size=10).map(hp.text),
    st.integers(-(2**31), 2**31 - 1).map(hp.integer),
    # Sizes and names a model pickle holds, as pickle writes them.
    st.sampled_from([0, -1, 3, 12, 2**31, 10**9, 10**12, 2**64, 10**100]).map(
        lambda n: pickle.dumps(n, protocol=2)[2:-1]
    ),
    st.sampled_from(
        ["dim", "nvis", "nhid", "_params", "name", "W", "C", "<f4", "f4", "O", "MT19937", "VAE"]
    ).map(hp.text),
    _floats.map(lambda x: pickle.BINFLOAT + struct.pack(">d", x)),
    st.binary(max_size=16).map(_binbytes),
    st.sampled_from(
        [
            pickle.NONE,
            pickle.NEWTRUE,
            pickle.NEWFALSE,
            pickle.EMPTY_LIST,
            pickle.EMPTY_DICT,
            pickle.EMPTY_TUPLE,
            pickle.EMPTY_SET,
            pickle.LONG1 + b"\x09" + b"\xff" * 9,
            pickle.LONG4 + struct.pack("<i", 2**31 - 1) + b"\x01",
            pickle.BINUNICODE8 + struct.pack("<Q", 6 << 30) + b"x",
            pickle.BINGET + b"\x00",
            pickle.LONG_BINGET + b"\xff\xff\xff\x7f",
            _f4,
        ]
    ),
    st.sampled_from(_GLOBALS).map(_global),
    st.sampled_from(_GLOBALS).map(lambda pair: hp.text_global(*pair)),
    st.tuples(st.integers(1, 20), st.booleans()).map(
        lambda t: (
            _dag(t[0], pickle.EMPTY_TUPLE, pickle.TUPLE)
            if t[1]
            else _dag(t[0], pickle.EMPTY_LIST, pickle.LIST)
        )
    ),
)


def _combine(kind: str, pair, children: list[bytes], shape: list[int]) -> bytes:
    """Opcodes that push one value of ``kind``, made of ``children`` (each pushes one)."""
    first, second, third = [*children, pickle.NONE, pickle.EMPTY_DICT, pickle.NONE][:3]
    if kind in ("TUPLE", "LIST", "DICT", "FROZENSET"):
        return pickle.MARK + b"".join(children) + getattr(pickle, kind)
    if kind == "REDUCE":
        return hp.call(_global(pair), hp.tup(*children))
    if kind == "NEWOBJ":
        return _global(pair) + hp.tup(*children) + pickle.NEWOBJ
    if kind == "NEWOBJ BUILD":
        return _global(pair) + pickle.EMPTY_TUPLE + pickle.NEWOBJ + first + pickle.BUILD
    if kind in ("BUILD", "POP"):
        return first + second + getattr(pickle, kind)
    if kind == "SETITEM":
        return first + second + third + pickle.SETITEM
    if kind in ("SETITEMS", "APPENDS", "ADDITEMS"):
        return first + pickle.MARK + b"".join(children[1:]) + getattr(pickle, kind)
    if kind == "MEMOIZE":
        return first + pickle.MEMOIZE
    # An array as NumPy pickles it, with any data and shape.
    dims = hp.tup(*map(hp.integer, shape))
    return hp.call(_global(_GLOBALS[0]), hp.tup(first, _f4, dims, hp.text("C")))


_KINDS = (
    "TUPLE",
    "LIST",
    "DICT",
    "FROZENSET",
    "REDUCE",
    "NEWOBJ",
    "NEWOBJ BUILD",
    "BUILD",
    "POP",
    "SETITEM",
    "SETITEMS",
    "APPENDS",
    "ADDITEMS",
    "MEMOIZE",
    "array",
)


def _pickle_nodes(children):
    # (children appears once: Hypothesis's description of a recursive strategy
    # repeats it at every level, and grows as its count to the power of the depth.)
    return st.builds(
        _combine,
        st.sampled_from(_KINDS),
        st.sampled_from(_GLOBALS),
        st.lists(children, max_size=4),
        st.lists(st.integers(-1, 9), max_size=3),
    )


_pickle_values = st.recursive(_pickle_leaves, _pickle_nodes, max_leaves=16)
#: Raw opcodes, some refused (INST, OBJ, EXT1, PERSID, NEXT_BUFFER) and some stack-breaking.
_raw_opcodes = st.sampled_from(
    [
        pickle.INST,
        pickle.OBJ,
        pickle.EXT1 + b"\x01",
        pickle.PERSID + b"x\n",
        pickle.NEXT_BUFFER,
        pickle.MARK,
        pickle.POP_MARK,
        pickle.DUP,
        pickle.STOP,
        pickle.REDUCE,
        pickle.FRAME + struct.pack("<Q", 1 << 40),
        b"\xff",
    ]
)
_protocols = st.sampled_from([2, 4, 5])
pickle_programs = st.one_of(
    st.tuples(_pickle_values, _protocols).map(lambda t: hp.program(*t)),
    st.tuples(
        st.tuples(_pickle_values, _protocols).map(lambda t: hp.program(*t)),
        st.lists(st.tuples(st.integers(0, 10**6), _raw_opcodes), max_size=2),
    ).map(lambda t: _insert(*t)),
)


#: Opcodes that push one value and take none: a generated value can take the
#: place of one without breaking the stream around it.
_PUSHERS = frozenset(
    {
        "BININT",
        "BININT1",
        "BININT2",
        "LONG1",
        "BINFLOAT",
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "SHORT_BINBYTES",
        "BINBYTES",
        "BYTEARRAY8",
        "NONE",
        "NEWTRUE",
        "NEWFALSE",
        "EMPTY_LIST",
        "EMPTY_DICT",
        "EMPTY_TUPLE",
        "EMPTY_SET",
        "BINGET",
        "LONG_BINGET",
    }
)

#: Edits of a pickle: bytes flipped, set, inserted, deleted or cut at any
#: position, and values (an opcode that pushes one) replaced by generated ones.
byte_edits = st.lists(
    st.one_of(
        st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
        st.tuples(st.just("set"), st.integers(0, 10**6), st.integers(0, 255)),
        st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("insert"), st.integers(0, 10**6), _pickle_values),
        st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 64)),
        st.tuples(st.just("truncate"), st.integers(0, 10**6), st.none()),
        st.tuples(st.just("value"), st.integers(0, 10**6), _pickle_values),
    ),
    max_size=4,
)


def _opcodes(data: bytes) -> list[tuple[str, int, int]]:
    """``(name, start, end)`` of every opcode of ``data`` (empty if it is no valid pickle)."""
    try:
        ops = [(op.name, position) for op, _, position in pickletools.genops(data)]
    except Exception:  # the stream was broken by an earlier edit
        return []
    ends = [position for _, position in ops[1:]] + [len(data)]
    return [(name, start, end) for (name, start), end in zip(ops, ends, strict=True)]


def _replace_value(data: bytes, index: int, value: bytes) -> bytes:
    """``data`` without frames (whose lengths an edit would break), with its
    ``index``-th value-pushing opcode replaced by ``value``."""
    ops = _opcodes(data)
    if not ops:
        return data
    data = b"".join(data[start:end] for name, start, end in ops if name != "FRAME")
    spans = [(start, end) for name, start, end in _opcodes(data) if name in _PUSHERS]
    if not spans:
        return data
    start, end = spans[index % len(spans)]
    return data[:start] + value + data[end:]


def _edit_bytes(data: bytes, edits) -> bytes:
    """``data`` with ``edits`` (see :data:`byte_edits`) applied in order."""
    for kind, position, argument in edits:
        if kind == "value":
            data = _replace_value(data, position, argument)
            continue
        data = bytearray(data)
        at = position % (len(data) + 1)
        if kind == "flip" and at < len(data):
            data[at] ^= 1 << argument
        elif kind == "set" and at < len(data):
            data[at] = argument
        elif kind == "insert":
            data[at:at] = argument
        elif kind == "delete":
            del data[at : at + argument]
        elif kind == "truncate":
            del data[at:]
        data = bytes(data)
    return data


def _built(pair, key: str, value: bytes) -> bytes:
    """A pickle that creates the class ``pair`` names and sets its attribute ``key``."""
    return hp.program(
        _global(pair)
        + pickle.EMPTY_TUPLE
        + pickle.NEWOBJ
        + pickle.EMPTY_DICT
        + hp.text(key)
        + value
        + pickle.SETITEM
        + pickle.BUILD
    )


#: A pickle that builds a VectorSpace of dimension 3, opcode by opcode.
VALID_PROGRAM = _built(("pylearn_vae.space", "VectorSpace"), "dim", hp.integer(3))


def _model_with_history(model):
    """``model`` with a monitor channel that has a short history."""
    channel = MonitorChannel("valid_objective")
    channel.val_record, channel.epoch_record = [110.5, 99.25], [0, 1]
    channel.batch_record, channel.example_record, channel.time_record = [0, 5], [0, 500], [0.0, 1.5]
    Monitor.get_monitor(model).channels["valid_objective"] = channel
    return model


@pytest.fixture(scope="module")
def model_pickle(tmp_path_factory) -> Path:
    """A real model's ``.pkl`` file (and what loading one imports, imported)."""
    path = tmp_path_factory.mktemp("pickles") / "good.pkl"
    persistence.save(path, _model_with_history(make_vae(seed=1)))
    persistence.load(path)
    return path


def _load_pickle_in_a_clean_folder(data: bytes):
    """Load ``data`` as a ``.pkl`` file in a fresh folder (the working directory, so that a
    payload's relative path lands there); check that nothing ran and no file appeared."""
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        path = Path(folder, "model.pkl")
        path.write_bytes(data)
        with recording() as events:
            result = _attempt(lambda: persistence.load(path), ModelFileError, str(path), len(data))
        assert outside_effects(events, path) == []
        assert os.listdir(folder) == ["model.pkl"]
    if not isinstance(result, BaseException):
        assert _finite(result)
    return result


#: pickletools (the prescan) decodes a STRING opcode's escapes and warns about unknown ones.
_PICKLETOOLS_WARNING = "ignore:invalid escape sequence:DeprecationWarning"


@pytest.mark.filterwarnings(_PICKLETOOLS_WARNING)
@settings(max_examples=400, **_COMMON)
@given(edits=byte_edits)
@example(edits=[])
def test_edited_model_pickle_loads_or_is_a_model_file_error(model_pickle, edits):
    result = _load_pickle_in_a_clean_folder(_edit_bytes(model_pickle.read_bytes(), edits))
    if not edits:
        assert [p.get_value().shape for p in result.get_params()][:2] == [(12, 8), (8,)]
        assert result.monitor.channels["valid_objective"].val_record == [110.5, 99.25]


@pytest.mark.filterwarnings(_PICKLETOOLS_WARNING)
@settings(max_examples=600, **_COMMON)
@given(data=pickle_programs)
@example(data=VALID_PROGRAM)
@example(data=hp.program(_f4 + pickle.NONE + pickle.BUILD))
@example(data=hp.program(_global(("pylearn_vae.models.vae", "VAE"))))
@example(data=_built(("pylearn_vae.models.vae", "VAE"), "_params", hp.lst(hp.integer(5))))
@example(
    data=hp.program(_global(("pylearn_vae.models.vae", "VAE")) + pickle.EMPTY_TUPLE + pickle.NEWOBJ)
)
@example(
    data=hp.program(_dag(16, pickle.EMPTY_TUPLE, pickle.TUPLE) + pickle.EMPTY_TUPLE + pickle.NEWOBJ)
)
@example(
    data=hp.program(
        hp.call(
            _global(_GLOBALS[0]),
            hp.tup(
                _binbytes(b""), _dag(16, pickle.EMPTY_LIST, pickle.LIST), hp.tup(), hp.text("C")
            ),
        )
    )
)
def test_pickle_program_loads_or_is_a_model_file_error(model_pickle, data):
    result = _load_pickle_in_a_clean_folder(data)
    if data == VALID_PROGRAM:
        assert type(result).__name__ == "VectorSpace" and result.dim == 3


# --- HDF5 model files and checkpoints ------------------------------------------------

#: Keys of the groups' JSON attributes (monitor counters, checkpoint state fields).
_JSON_KEYS = (
    "epochs_seen",
    "batches_seen",
    "examples_seen",
    "last_epoch_seconds",
    "last_total_seconds",
    "channel_order",
    "finished",
    "termination_class",
    "resume_position",
    "base_learning_rate",
    "init_momentum",
    "kind",
    "pos",
    "has_gauss",
    "cached",
    "_offset",
    "threads",
    "count",
    "epochs_since",
    "posterior[1]",
    "valid_objective",
)
_ATTRIBUTE_NAMES = (
    "json",
    "model_yaml",
    "dataset_yaml",
    "config_yaml",
    "format",
    "format_version",
    "pylearn_vae_version",
    "x\x1b",
)
_NAMES = (
    "x",
    "0",
    "val_record",
    "time_record",
    "posterior_mu_W",
    "params",
    "monitor",
    "channels",
    "\x1b[31m",
    "a" * 300,
)
_SPECIAL = (0, -1, 1, 2**31, 2**53 + 1, 2**62, 2**63 - 1, -(2**63), 10**30, 0.5, True, False)
_FLOATS = (math.nan, math.inf, -math.inf, 1e308, -2.2250738585072014e-308)
_hostile_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
_json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(_SPECIAL + _FLOATS),
    _floats,
    _hostile_text,
    st.sampled_from(_JSON_KEYS),
)
json_values = st.recursive(
    _json_leaves,
    lambda c: (
        st.lists(c, max_size=4)
        | st.dictionaries(st.sampled_from(_JSON_KEYS) | _hostile_text, c, max_size=4)
    ),
    max_leaves=10,
)
json_texts = st.one_of(
    json_values.map(json.dumps),
    _longs(
        ("", "[", 5000, "", "]"),
        ("", '{"a": ', 3000, "1", "}"),
        ("", "1", 5000),
        ('{"epochs_seen": ', "9", 5000, "}"),
    ),
    st.sampled_from(
        [
            '{"epochs_seen": 1e999}',
            '"\\ud800"',
            "{",
            "",
            "NaN",
        ]
    ),
    _hostile_text,
)
_dtypes = st.sampled_from(
    ["<f4", ">f8", "<f2", "<i1", "<i8", "<u8", "?", "<c8", "S4", [("a", "<f4"), ("b", "<i2")]]
)


def _array(dtype, shape, seed: int, special) -> np.ndarray:
    """An array of ``dtype`` and ``shape`` with random values, ``special`` (if any) first."""
    dtype = np.dtype(dtype)
    values = np.random.default_rng(seed).standard_normal(shape) * 10.0 ** (seed % 40)
    if special is not None and values.size:
        values.flat[0] = special
    with np.errstate(all="ignore"), contextlib.suppress(TypeError, ValueError, OverflowError):
        return values.astype(dtype)
    return np.zeros(shape, dtype)


arrays = st.builds(
    _array,
    _dtypes,
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
    st.integers(0, 2**32 - 1),
    st.none() | st.sampled_from(_SPECIAL + _FLOATS),
)
attribute_values = st.one_of(
    _hostile_text,
    st.integers(-(2**63), 2**64 - 1),
    _floats,
    arrays,
    st.binary(max_size=20),
    st.lists(_hostile_text, min_size=1, max_size=3),
    json_texts,
    yaml_texts,
)
#: Groups and datasets of model files and checkpoints that the loaders read field by field.
_KNOWN_PATHS = (
    "/",
    "/monitor",
    "/monitor/channels/valid_objective",
    "/monitor/channels/learning_rate",
    "/monitor/channels/valid_objective/val_record",
    "/monitor/channels/valid_objective/epoch_record",
    "/monitor/channels/learning_rate/time_record",
    "/params/posterior_mu_W",
    "/params/prior_mu",
    "/state",
    "/state/algorithm",
    "/state/algorithm/learning_rate",
    "/state/algorithm/learning_rule",
    "/state/algorithm/learning_rule/momentum",
    "/state/algorithm/learning_rule/state",
    "/state/algorithm/learning_rule/state/0",
    "/state/algorithm/rng",
    "/state/algorithm/rng/keys",
    "/state/algorithm/epoch_rng",
    "/state/algorithm/update_callbacks",
    "/state/extensions",
    "/state/rngs",
    "/state/termination",
)
#: An object of the file: by index among all its objects, or by path.
_paths = st.one_of(st.integers(0, 10**6), st.sampled_from(_KNOWN_PATHS))
#: The JSON text of a random generator's state, as a checkpoint stores it.
_rng_states = st.builds(
    lambda name, state: json.dumps(
        {"bit_generator": name, "state": state, "has_uint32": 0, "uinteger": 0}
    ),
    st.sampled_from(["PCG64", "MT19937", "Philox", "SFC64", "", "\x1b"]),
    json_values,
)
#: Declared shapes larger than what is stored.
_declared = st.sampled_from([(2**31,), (2**16, 2**16), (3,), (5, 3), (0,)])
h5_mutations = st.lists(
    st.one_of(
        st.tuples(st.just("delete"), _paths),
        st.tuples(st.just("dataset"), _paths, st.sampled_from(_NAMES), arrays),
        st.tuples(st.just("compressed"), _paths, st.sampled_from(_NAMES), arrays),
        st.tuples(st.just("unwritten"), _paths, st.sampled_from(_NAMES), _declared),
        st.tuples(st.just("fill"), _paths, st.sampled_from(_SPECIAL + _FLOATS)),
        st.tuples(
            st.just("attribute"), _paths, st.sampled_from(_ATTRIBUTE_NAMES), attribute_values
        ),
        st.tuples(st.just("json"), _paths, json_texts),
        st.tuples(
            st.just("json_key"), _paths, st.sampled_from(_JSON_KEYS), json_values | _rng_states
        ),
        st.tuples(st.just("replace"), _paths, arrays),
        st.tuples(st.just("yaml"), st.sampled_from(_ATTRIBUTE_NAMES[1:4]), yaml_texts),
        st.tuples(st.just("group"), _paths, st.sampled_from(_NAMES)),
        st.tuples(st.just("hard_link"), _paths, _paths),
        st.tuples(st.just("soft_link"), _paths, st.sampled_from(["/params", "/x", "", "."])),
        st.tuples(st.just("external_link"), _paths),
        st.tuples(st.just("move"), _paths, _paths),
        st.tuples(st.just("pad_sizes"), st.sampled_from([13, 60, 1024, 2048])),
    ),
    max_size=4,
)

# What h5py raises when it refuses to write something (not what is being tested).
_WRITE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    OSError,
    RuntimeError,
    OverflowError,
    AttributeError,
)


def _objects(handle) -> list[str]:
    """The paths of every group and dataset of an open file, the root first."""
    names = ["/"]
    handle.visit(names.append)
    return names


def _path_of(handle, where) -> str:
    """The path of the object ``where`` names (an index among the file's objects, or a
    path; the root if the file has no such path)."""
    if isinstance(where, str):
        return where if where in handle else "/"
    objects = _objects(handle)
    return objects[where % len(objects)]


def _group_of(handle, where):
    """The group ``where`` names (a dataset's parent)."""
    item = handle[_path_of(handle, where)]
    return item if isinstance(item, h5py.Group) else item.parent


def _mutate(handle, mutation, secret: str) -> None:
    """Apply one of :data:`h5_mutations` to an open file (``secret``: another file)."""
    kind, *args = mutation
    pick = _path_of(handle, args[0]) if args and isinstance(args[0], int | str) else "/"
    if kind == "delete" and pick != "/":
        del handle[pick]
    elif kind in ("dataset", "compressed", "unwritten", "group"):
        group, name = _group_of(handle, args[0]), args[1]
        if name in group:
            del group[name]
        if kind == "dataset":
            group.create_dataset(name, data=args[2])
        elif kind == "compressed":
            group.create_dataset(name, data=args[2], compression="gzip", chunks=True)
        elif kind == "unwritten":
            group.create_dataset(name, shape=args[2], dtype="<f4")
        else:
            group.create_group(name)
    elif kind == "fill" and isinstance(handle[pick], h5py.Dataset):
        handle[pick][...] = args[1]
    elif kind == "replace" and isinstance(handle[pick], h5py.Dataset):
        del handle[pick]
        handle.create_dataset(pick, data=args[1])
    elif kind == "attribute":
        handle[pick].attrs[args[1]] = args[2]
    elif kind == "json":
        _group_of(handle, args[0]).attrs["json"] = args[1]
    elif kind == "json_key":
        group = _group_of(handle, args[0])
        tree = json.loads(group.attrs.get("json", "{}"))
        tree[args[1]] = args[2]
        group.attrs["json"] = json.dumps(tree)
    elif kind == "yaml":
        handle.attrs[args[0]] = args[1]
    else:
        _mutate_structure(handle, kind, args, pick, secret)


def _mutate_structure(handle, kind: str, args, pick: str, secret: str) -> None:
    group = _group_of(handle, args[0])
    if kind == "hard_link":
        group["linked"] = handle[_path_of(handle, args[1])]
    elif kind == "soft_link":
        group["soft"] = h5py.SoftLink(args[1])
    elif kind == "external_link":
        group["external"] = h5py.ExternalLink(secret, "/x")
    elif kind == "move" and pick != "/":
        handle.move(pick, _group_of(handle, args[1]).name.rstrip("/") + "/moved")
    elif kind == "pad_sizes" and "params" in handle and "model_yaml" in handle.attrs:
        # A dataset with the size as its length makes the size "stored" in the file.
        size = args[0]
        handle["params"].create_dataset("pad", data=np.zeros(size, "<f4"))
        text = handle.attrs["model_yaml"]
        handle.attrs["model_yaml"] = re.sub(r"\b(nvis|dim): \d+", rf"\1: {size}", text)


def _mutated_copy(good: Path, folder: str, mutations) -> Path:
    """A copy of ``good`` in ``folder`` with ``mutations`` applied (those h5py refuses to
    write are skipped)."""
    path = Path(folder, good.name)
    shutil.copy(good, path)
    with h5py.File(path, "r+") as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (h5py casting a value to a dataset's type)
        for mutation in mutations:
            with contextlib.suppress(*_WRITE_ERRORS):
                _mutate(handle, mutation, str(good.parent / "secret.h5"))
    return path


@pytest.fixture(scope="module")
def model_h5(tmp_path_factory) -> Path:
    """A real ``.h5`` model file (with a monitor history), and a file it must not reach."""
    folder = tmp_path_factory.mktemp("h5")
    path = folder / "good.h5"
    persistence.save(path, _model_with_history(yaml_parse.load(MODEL_YAML)))
    with h5py.File(folder / "secret.h5", "w") as handle:
        handle["x"] = np.full((5, 3), 7.0, "float32")
    persistence.load(path)
    return path


@settings(max_examples=200, **_COMMON)
@given(mutations=h5_mutations)
@example(mutations=[])
@example(mutations=[("yaml", "model_yaml", "a: !!timestamp abc")])
@example(mutations=[("pad_sizes", 1024)])
@example(mutations=[("attribute", 0, "x", np.zeros(0, "<f4"))])
@example(mutations=[("dataset", "/", "params", np.zeros(3, "<f4"))])
@example(mutations=[("dataset", "/", "monitor", np.zeros(3, "<f4"))])
def test_mutated_h5_model_loads_or_is_a_model_file_error(model_h5, mutations):
    with tempfile.TemporaryDirectory() as folder:
        path = _mutated_copy(model_h5, folder, mutations)
        size = path.stat().st_size
        with recording() as events, _traced_peak() as peak:
            result = _attempt(lambda: persistence.load(path), ModelFileError, str(path), size)
        assert outside_effects(events, path) == []
        # (a model's build may take its memory budget: see persistence.stored_yaml)
        assert peak[0] <= MEMORY_SLACK + stored_yaml.BUILD_ROOM + 32 * size, (
            f"loading a file of {size:,} bytes allocated {peak[0]:,} bytes"
        )
        assert os.listdir(folder) == [path.name]
    if not isinstance(result, BaseException):
        assert _finite(result)
    if not mutations:
        assert result.monitor.channels["valid_objective"].val_record == [110.5, 99.25]


@pytest.fixture(scope="module")
def checkpoint_run(tmp_path_factory):
    """A training run after one epoch (a compiled step), and a checkpoint of it."""
    folder = tmp_path_factory.mktemp("checkpoints")
    data = DenseDesignMatrix(X=binary_data(40, 12))
    algorithm = SGD(
        learning_rate=0.01,
        batch_size=10,
        cost=VAECriterion(),
        learning_rule=Momentum(init_momentum=0.5),
        termination_criterion=EpochCounter(1),
    )
    algorithm.threads = ThreadChooser([1])  # (a job's: its count is saved too)
    train = Train(dataset=data, model=yaml_parse.load(MODEL_YAML), algorithm=algorithm)
    train.main_loop()
    path = folder / "good_checkpoint.h5"
    persistence.save_checkpoint(path, train, config_text=MODEL_YAML)
    with h5py.File(folder / "secret.h5", "w") as handle:
        handle["x"] = np.full((5, 3), 7.0, "float32")
    return path, train


@pytest.mark.compiles  # (the fixture's training run; the examples only load)
@settings(max_examples=40, **_COMMON)
@given(mutations=h5_mutations)
@example(mutations=[])
@example(mutations=[("attribute", 0, "x", np.zeros(0, "<f4"))])
@example(mutations=[("dataset", "/", "state", np.zeros(3, "<f4"))])
def test_mutated_checkpoint_loads_or_is_a_model_file_error(checkpoint_run, mutations):
    good, train = checkpoint_run
    with tempfile.TemporaryDirectory() as folder:
        path = _mutated_copy(good, folder, mutations)
        size = path.stat().st_size
        where = str(path)
        with recording() as events:
            info = _attempt(
                lambda: persistence.read_checkpoint_info(path), ModelFileError, where, size
            )
            state = _attempt(
                lambda: persistence.load_checkpoint(path, train), ModelFileError, where, size
            )
        assert outside_effects(events, path) == []
        assert os.listdir(folder) == [path.name]
    # The next example starts from the good state again (which must still load).
    persistence.load_checkpoint(good, train)
    if not mutations:
        assert info == {
            "finished": False,
            "epochs_seen": 1,
            "config_yaml": MODEL_YAML,
            "resume_position": 0,
        }
        assert state["algorithm"]["resume_position"] == 0


@pytest.mark.compiles  # (the fixture's training run)
@pytest.mark.parametrize(
    ("field", "value"),
    [("has_gauss", 10**30), ("pos", 10**30), ("pos", -1), ("keys", np.zeros(3, "<u4"))],
)
def test_a_checkpoint_random_state_that_cannot_be_restored_is_named(
    checkpoint_run, tmp_path, field, value
):
    good, train = checkpoint_run
    path = tmp_path / "bad_checkpoint.h5"
    shutil.copy(good, path)
    with h5py.File(path, "r+") as handle:
        group = handle["state/algorithm/rng"]
        if field == "keys":
            del group["keys"]
            group["keys"] = value
        else:
            tree = json.loads(group.attrs["json"])
            tree[field] = value
            group.attrs["json"] = json.dumps(tree)
    message = rf"{re.escape(str(path))}: field state/algorithm/rng is not a valid random state"
    with pytest.raises(ModelFileError, match=message):
        persistence.load_checkpoint(path, train)
    persistence.load_checkpoint(good, train)  # (the good one still loads)
