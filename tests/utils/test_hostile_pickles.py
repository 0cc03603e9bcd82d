"""Crafted ``.pkl`` files: every one is refused, runs nothing and reads nothing outside.

The cases come from :mod:`tests.helpers.hostile_pickles`. A test also checks
that the payloads are real: Python's own ``pickle.loads`` runs them.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import pickle
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from pylearn_vae import persistence
from pylearn_vae.persistence import ModelFileError, safe_pickle
from pylearn_vae.persistence.checks import SizeBound
from tests.helpers import hostile_pickles as hp
from tests.helpers.audit import ACTIONS, outside_effects, recording
from tests.helpers.models import make_vae

FOLDER = tempfile.mkdtemp(prefix="pylearn_vae_hostile_")
CASES = (
    hp.walk_cases(FOLDER)
    + hp.direct_cases(FOLDER)
    + hp.opcode_cases(FOLDER)
    + hp.numpy_cases(FOLDER)
)

SECRET = hp.SECRET


@pytest.fixture(scope="module", autouse=True)
def folder():
    Path(FOLDER, SECRET).write_text("4242424\n")
    # Import what a real model pickle needs, so that loading it opens no module files.
    model_path = Path(FOLDER, "good.pkl")
    persistence.save(model_path, make_vae(seed=1))
    persistence.load(model_path)
    yield Path(FOLDER)
    shutil.rmtree(FOLDER, ignore_errors=True)


def _markers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(hp.MARKER))


def _refused(case: hp.Case, folder: Path, name: str = "model.pkl") -> None:
    path = folder / name
    path.write_bytes(case.data)
    modules = set(sys.modules)
    with recording() as events:
        with pytest.raises(ModelFileError, match=case.match):
            persistence.load(path)
    assert outside_effects(events, path, SECRET) == []
    assert [m for m in set(sys.modules) - modules if not m.startswith("pylearn_vae.models")] == []
    assert _markers(folder) == []
    path.unlink()


def test_there_are_enough_cases():
    assert len(CASES) >= 150
    assert sum(c.live for c in CASES) >= 90
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_crafted_pickle_is_refused_and_runs_nothing(case, folder):
    _refused(case, folder)


def test_swapped_real_model_pickles_are_refused(folder):
    model = make_vae(seed=2)
    cases = hp.swapped_model_cases(model, FOLDER)
    assert len(cases) == 20
    for case in cases:
        _refused(case, folder)


@pytest.mark.subprocess
def test_payloads_are_live_under_plain_pickle(folder):
    """The generator makes real exploits: unrestricted unpickling acts on every live case."""
    model = make_vae(seed=2)
    live = [c for c in CASES if c.live] + hp.swapped_model_cases(model, FOLDER)
    inert = []
    for case in live:
        with recording() as events:
            with contextlib.suppress(Exception):
                result = pickle.loads(case.data)
                del result
        deadline = time.time() + 5
        while not _markers(folder) and any(e == "subprocess.Popen" for e, _ in events):
            if time.time() > deadline:
                break
            time.sleep(0.01)
        acted = _markers(folder) or any(
            event in ACTIONS - {"compile"} or (event == "open" and SECRET in arg)
            for event, arg in events
        )
        if not acted:
            inert.append(case.name)
        for marker in _markers(folder):
            (folder / marker).unlink()
    assert inert == [], "\n".join(inert)


def test_a_real_model_still_loads(folder):
    model = make_vae(seed=3)
    path = folder / "real.pkl"
    persistence.save(path, model)
    with recording() as events:
        clone = persistence.load(path)
    assert outside_effects(events, path, SECRET) == []
    for a, b in zip(model.get_param_values(), clone.get_param_values()):
        assert (a == b).all()


@pytest.mark.parametrize(
    ("owner", "attribute"),
    [("model", "nhid"), ("model", "nvis"), ("space", "dim"), ("layer", "dim")],
)
def test_size_attributes_must_match_the_stored_parameters(folder, owner, attribute):
    """Small arrays with nhid = 10**9 would make sampling allocate without bound."""
    model = make_vae(seed=4)
    target = {
        "model": model,
        "space": model.get_input_space(),
        "layer": model.posterior.mlp.layers[0],
    }[owner]
    setattr(target, attribute, 10**9)
    path = folder / "sizes.pkl"
    persistence.save(path, model)
    with pytest.raises(
        ModelFileError,
        match=rf"{path}: \w+\.{attribute} is 1000000000, but no parameter in the file has that size",
    ):
        persistence.load(path)


def test_a_size_no_array_has_is_believed_up_to_the_largest_array():
    """A convolutional model's 784 pixels are no parameter's dimension (4x4
    kernels, 7x7x32 maps), but its dense layers store more numbers than that."""
    bound = SizeBound([(16, 1, 4, 4), (32, 1568), (16,)])
    assert bound.allows(784) and bound.allows(1568) and bound.allows(32 * 1568)
    assert not bound.allows(32 * 1568 + 1)
    assert not SizeBound([]).allows(1)


# -- NumPy's own pickles: rebuilt with public NumPy API, bit for bit -------------


def _same_array(got, want, strides: bool = True) -> None:
    assert type(got) is np.ndarray
    assert got.dtype.str == want.dtype.str  # the byte order too
    assert got.shape == want.shape
    if strides:  # an empty array's strides are free: np.zeros((0, 5)) has (0, 0)
        assert got.strides == want.strides
    assert (got.flags.c_contiguous, got.flags.f_contiguous, got.flags.writeable) == (
        want.flags.c_contiguous,
        want.flags.f_contiguous,
        want.flags.writeable,
    )
    assert got.tobytes(order="A") == want.tobytes(order="A")


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


ARRAYS = {
    "f4 C": np.arange(12, dtype=np.float32).reshape(3, 4),
    "f8 Fortran": np.asfortranarray(np.linspace(-1.0, 1.0, 12).reshape(3, 4)),
    "f4 Fortran 3-d big-endian": np.asfortranarray(np.arange(24, dtype=">f4").reshape(2, 3, 4)),
    "i8 big-endian": np.arange(-3, 3, dtype=">i8"),
    "f8 0-d": np.array(np.pi),
    "c16 0-d big-endian": np.array(1 - 2j, dtype=">c16"),
    "c8 Fortran": np.asfortranarray((np.arange(6) * 1j).astype(np.complex64).reshape(2, 3)),
    "u1": np.arange(256, dtype=np.uint8),
    "bool Fortran": np.asfortranarray(np.eye(3, dtype=bool)[:, :2]),
    "i2 empty": np.zeros((0, 5), dtype=np.int16),
    "f2 with inf and nan": np.array([0.5, -np.inf, np.nan], dtype=np.float16),
    "f4 nan payload": np.array([0x7FC00001, 0xFFFFFFFF], dtype=np.uint32).view(np.float32),
    "f4 read-only": _read_only(np.arange(4, dtype=np.float32)),
}


@pytest.mark.parametrize("name", ARRAYS)
def test_numpy_pickled_arrays_load_bit_for_bit(name):
    """NumPy writes contiguous arrays as a call to its private ``_frombuffer``;
    the loader's own version gives what NumPy's gives (a view of the stored
    bytes: writeable exactly when NumPy's is)."""
    array = ARRAYS[name]
    data = pickle.dumps(array, protocol=5)
    assert b"_frombuffer" in data
    got = safe_pickle.loads(data, "arrays.pkl")
    _same_array(got, pickle.loads(data))
    _same_array(got, array, strides=array.size > 0)


def _seed_state(seq: np.random.SeedSequence) -> tuple:
    entropy = seq.entropy
    if isinstance(entropy, np.ndarray):
        entropy = (entropy.dtype.str, entropy.tobytes())
    return (
        entropy,
        seq.spawn_key,
        seq.pool_size,
        seq.n_children_spawned,
        seq.pool.dtype.str,
        seq.pool.tobytes(),
        seq.generate_state(8, np.uint64).tobytes(),
        [child.generate_state(4).tobytes() for child in seq.spawn(2)],
    )


def _spawned(seq: np.random.SeedSequence, n: int) -> np.random.SeedSequence:
    seq.spawn(n)
    return seq


SEEDS = {
    "int": lambda: np.random.SeedSequence(12345),
    "a spawned child": lambda: np.random.SeedSequence(7).spawn(3)[2],
    "spawn_key and children spawned": lambda: np.random.SeedSequence(
        12345, spawn_key=(3, 1), n_children_spawned=2
    ),
    "after spawning": lambda: _spawned(np.random.SeedSequence(99), 5),
    "list entropy, pool of 8": lambda: np.random.SeedSequence([1, 2, 2**70], pool_size=8),
    "array entropy": lambda: np.random.SeedSequence(np.array([1, 2**40], dtype=np.uint64)),
    "entropy from the system": lambda: np.random.SeedSequence(),
}


@pytest.mark.parametrize("name", SEEDS)
def test_numpy_pickled_seed_sequences_load_bit_for_bit(name):
    seq = SEEDS[name]()
    data = pickle.dumps(seq, protocol=5)
    assert b"__pyx_unpickle_SeedSequence" in data
    got = safe_pickle.loads(data, "seeds.pkl")
    assert type(got) is np.random.SeedSequence
    want = _seed_state(pickle.loads(data))
    assert _seed_state(got) == want
    assert _seed_state(seq) == want


def test_numpy_pickled_random_states_load_bit_for_bit():
    rng = np.random.RandomState(7)
    rng.standard_normal(5)
    bit_generator = np.random.MT19937(np.random.SeedSequence(9, spawn_key=(4,)))
    bit_generator.random_raw(3)
    data = pickle.dumps((rng, bit_generator, bit_generator.seed_seq), protocol=5)
    got_rng, got_bits, got_seq = safe_pickle.loads(data, "states.pkl")
    want_rng, want_bits, _ = pickle.loads(data)
    assert got_bits.seed_seq is got_seq  # one object, as the stream says
    assert _seed_state(got_seq) == _seed_state(want_bits.seed_seq)
    for got, want in [(got_rng.get_state(legacy=False), want_rng.get_state(legacy=False))] + [
        (got_bits.state, want_bits.state)
    ]:
        assert got["state"]["key"].tobytes() == want["state"]["key"].tobytes()
        assert {k: v for k, v in got.items() if k != "state"} == {
            k: v for k, v in want.items() if k != "state"
        }
        assert got["state"]["pos"] == want["state"]["pos"]
    assert got_rng.random_sample(4).tobytes() == want_rng.random_sample(4).tobytes()
    assert got_bits.random_raw(4).tobytes() == want_bits.random_raw(4).tobytes()


def test_loading_resolves_no_private_numpy_name(monkeypatch):
    """With NumPy's private pickle helpers gone, NumPy's pickles still load:
    the stream names them, but the loader resolves them to its own code."""
    objects = (
        ARRAYS["f4 Fortran 3-d big-endian"],
        SEEDS["spawn_key and children spawned"](),
        np.random.RandomState(3),
        np.random.MT19937(5),
    )
    data = pickle.dumps(objects, protocol=5)
    want = pickle.loads(data)
    for module, name in [
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
    ]:
        assert module.encode() in data and name.encode() in data
        monkeypatch.delattr(importlib.import_module(module), name)
    got = safe_pickle.loads(data, "private.pkl")
    _same_array(got[0], want[0])
    assert _seed_state(got[1]) == _seed_state(want[1])
    assert got[2].randint(0, 2**31, 5).tolist() == want[2].randint(0, 2**31, 5).tolist()
    assert got[3].random_raw(5).tolist() == want[3].random_raw(5).tolist()


# Written by NumPy 1.26.4 (Python 3.11), which names ``numpy.core.numeric``:
#   ro = np.arange(4, dtype="<u4"); ro.flags.writeable = False
#   base64.b64encode(zlib.compress(pickle.dumps((
#       np.asfortranarray(np.arange(6, dtype=">f4").reshape(2, 3)), np.array(2.5),
#       np.arange(12, dtype="<i8").reshape(3, 4), ro, np.zeros((0, 3), dtype="<f4"),
#       np.random.SeedSequence(12345, spawn_key=(3, 1), n_children_spawned=2),
#       np.random.SeedSequence([1, 2, 2**70], pool_size=8)), protocol=5), 9))
NUMPY_1_26_PICKLE = (
    "eNprYJ36kokBDDR6hPJKcwsq9ZLzi1L1gMzUoszkKT3c8WlF+blJpWlpqUVTJk/RmCbBgAAODgwM9g1AGoRB/AUM"
    "DFN6WMHmAOmUksqCVKCmHqY0kymdHe1TgqZoeDP3MNpN8fPz8/oPBGDCm6FkSpI3kzdz25QeRrcpJUBlGUwa0zgY"
    "kAGLw5QMNqBBFsgG2WAxSLOH0RluRgIDKmCE0lA/MzDDTIfSrFCaDUqzQ2mYWzihNBeU5obSYLdlIrktQwSLF5m9"
    "WdqmZIhBHecsAHMRE9QlYFNKTQiYwtKKMGMaA7ID0ghpZQCFMURzjxQktosS81Lyc/WSMkvi01PzUosSS/KLpvRI"
    "x8cXVFbEl+YVZCZn56TGB6empgSnFpam5iWDIjTDsIcHTchLadErZj+w5b6WBt5MIMcJQB13bFlY+5RbM6zW5X35"
    "8eRPvNuUDBWEL7xZgOHC2AaMsqQM4wxTJHNigf5g9Gbq4oQnt1RvBpC5ClB+YA/DwSlSBo45k5p/HvqwUaizquJT"
    "YUSsKzD+ps0x33cMZA8H3B4OTaAVJVP0AKIY7Lc="
)


def test_numpy_1_26_pickles_load_bit_for_bit():
    data = zlib.decompress(base64.b64decode(NUMPY_1_26_PICKLE))
    assert b"numpy.core.numeric" in data and b"numpy._core" not in data
    got = safe_pickle.loads(data, "numpy126.pkl")
    *arrays, seq, seq8 = got
    read_only = _read_only(np.arange(4, dtype="<u4"))
    for array, want in zip(
        arrays,
        [
            np.asfortranarray(np.arange(6, dtype=">f4").reshape(2, 3)),
            np.array(2.5),
            np.arange(12, dtype="<i8").reshape(3, 4),
            read_only,
            np.zeros((0, 3), dtype="<f4"),
        ],
        strict=True,
    ):
        _same_array(array, want, strides=want.size > 0)
    assert _seed_state(seq) == _seed_state(
        np.random.SeedSequence(12345, spawn_key=(3, 1), n_children_spawned=2)
    )
    assert _seed_state(seq8) == _seed_state(np.random.SeedSequence([1, 2, 2**70], pool_size=8))


# -- SeedSequence pickles that NumPy would load as given, refused here -----------


class _Reduced:
    """Pickles as the given reduction (NumPy's SeedSequence unpickler with parts of our choosing)."""

    def __init__(self, *reduction) -> None:
        self.reduction = reduction

    def __reduce__(self):
        return self.reduction


def _seed_sequence_pickle(state, *, checksum=None, in_call=False, build=True) -> bytes:
    unpickle, (cls, real_checksum, _), _ = np.random.SeedSequence(0).__reduce__()
    checksum = real_checksum if checksum is None else checksum
    if in_call:
        reduction = (unpickle, (cls, checksum, state)) + ((state,) if build else ())
    else:
        reduction = (unpickle, (cls, checksum, None)) + ((state,) if build else ())
    return pickle.dumps(_Reduced(*reduction), protocol=5)


def _state(seq=None, **fields) -> tuple:
    """The pickled state of ``seq`` (``SeedSequence(5)``), some fields replaced."""
    seq = np.random.SeedSequence(5) if seq is None else seq
    values = dict(
        entropy=seq.entropy,
        n_children_spawned=seq.n_children_spawned,
        pool=seq.pool,
        pool_size=seq.pool_size,
        spawn_key=seq.spawn_key,
    )
    values.update(fields)
    return tuple(values.values())


def _tampered_pool_bytes() -> bytes:
    seq = np.random.SeedSequence(5)
    data = pickle.dumps(seq, protocol=5)
    pool = seq.pool.tobytes()
    assert data.count(pool) == 1
    return data.replace(pool, bytes([pool[0] ^ 1]) + pool[1:])


ALTERED = r"pool does not follow from its entropy, spawn_key and pool_size \(the file was altered\)"
SEED_CASES = [
    hp.Case("SeedSequence pool bytes flipped", _tampered_pool_bytes(), ALTERED),
    hp.Case("SeedSequence entropy changed", _seed_sequence_pickle(_state(entropy=6)), ALTERED),
    hp.Case(
        "SeedSequence spawn_key changed",
        _seed_sequence_pickle(_state(spawn_key=(1,))),
        ALTERED,
    ),
    hp.Case(
        "SeedSequence pool_size changed",
        _seed_sequence_pickle(_state(np.random.SeedSequence(5, pool_size=8), pool_size=5)),
        "pool that is not 5 uint32 words",
    ),
    hp.Case(
        "SeedSequence state given in the call, pool altered",
        _seed_sequence_pickle(_state(pool=np.arange(4, dtype=np.uint32)), in_call=True),
        ALTERED,
    ),
    hp.Case(
        "SeedSequence pool_size 10**9",
        _seed_sequence_pickle(_state(pool_size=10**9)),
        "pool_size 1000000000, expected an integer of at most 64",
    ),
    hp.Case(
        "SeedSequence with a real pool of 2048 words",
        pickle.dumps(np.random.SeedSequence(5, pool_size=2048), protocol=5),
        "pool_size 2048, expected an integer of at most 64",
    ),
    hp.Case(
        "SeedSequence with 5000 words of entropy",
        pickle.dumps(np.random.SeedSequence(2 ** (32 * 5000) - 1), protocol=5),
        "entropy or spawn_key that is not integers of at most 4096 32-bit words",
    ),
    hp.Case(
        "SeedSequence with a spawn_key of 5000 entries",
        _seed_sequence_pickle(_state(spawn_key=tuple(range(5000)))),
        "entropy or spawn_key that is not integers of at most 4096 32-bit words",
    ),
    hp.Case(
        "SeedSequence entropy None (fresh system entropy)",
        _seed_sequence_pickle(_state(entropy=None)),
        "SeedSequence no entropy",
    ),
    hp.Case(
        "SeedSequence float entropy",
        _seed_sequence_pickle(_state(entropy=5.0)),
        "entropy or spawn_key that is not integers",
    ),
    hp.Case(
        "SeedSequence spawn_key list",
        _seed_sequence_pickle(_state(spawn_key=[1])),
        "a list as spawn_key, expected a tuple",
    ),
    hp.Case(
        "SeedSequence float pool",
        _seed_sequence_pickle(_state(pool=np.zeros(4))),
        "pool that is not 4 uint32 words",
    ),
    hp.Case(
        "SeedSequence state of six fields",
        _seed_sequence_pickle(_state() + ({},)),
        r"state that is not a tuple of \(entropy, n_children_spawned, pool, pool_size, spawn_key\)",
    ),
    hp.Case(
        "SeedSequence state a dict",
        _seed_sequence_pickle({"entropy": 5}),
        "state that is not a tuple",
    ),
    hp.Case(
        "SeedSequence unknown layout checksum",
        _seed_sequence_pickle(_state(), checksum=0x1234567),
        "SeedSequence layout 19088743 that is not",
    ),
    hp.Case(
        "SeedSequence state set twice",
        _seed_sequence_pickle(_state(), in_call=True),
        "sets the state of a numpy.random.SeedSequence twice",
    ),
    hp.Case(
        "SeedSequence never given its state",
        _seed_sequence_pickle(None, build=False),
        "makes a numpy.random.SeedSequence and never gives its state",
    ),
]


@pytest.mark.parametrize("case", SEED_CASES, ids=[c.name for c in SEED_CASES])
def test_crafted_seed_sequence_is_refused(case, folder):
    _refused(case, folder)


def test_the_crafted_seed_sequences_load_under_plain_pickle():
    """NumPy itself takes all but three of them (the pool as given, no bound),
    so the refusals above are the loader's own checks."""
    numpy_refuses = []
    for case in SEED_CASES:
        try:
            seq = pickle.loads(case.data)
        except (TypeError, pickle.PickleError):
            numpy_refuses.append(case.name)
        else:
            assert type(seq) is np.random.SeedSequence, case.name
    assert numpy_refuses == [
        "SeedSequence spawn_key list",
        "SeedSequence state a dict",
        "SeedSequence unknown layout checksum",
    ]


# --- bounded in time: structures whose hashing or printing never ends ------------


def _tuple_dag(depth: int) -> bytes:
    """Opcodes leaving on the stack a tuple DAG ``depth`` deep: each level holds
    the previous one twice (memo references), 2**depth leaves in ~4*depth bytes."""
    body = pickle.EMPTY_TUPLE + pickle.MEMOIZE + pickle.POP
    for index in range(depth):
        body += pickle.BINGET + bytes([index]) + pickle.BINGET + bytes([index])
        body += pickle.TUPLE2 + pickle.MEMOIZE + pickle.POP
    return body + pickle.BINGET + bytes([depth])


DAG_CASES = {
    "a dict key (SETITEM)": pickle.EMPTY_DICT + _tuple_dag(60) + hp.integer(1) + pickle.SETITEM,
    "a dict key (SETITEMS)": pickle.EMPTY_DICT
    + pickle.MARK
    + _tuple_dag(60)
    + hp.integer(1)
    + pickle.SETITEMS,
    "a dict key (DICT)": pickle.MARK + _tuple_dag(60) + hp.integer(1) + pickle.DICT,
    "a set item (ADDITEMS)": pickle.EMPTY_SET + pickle.MARK + _tuple_dag(60) + pickle.ADDITEMS,
    "a frozenset item": pickle.MARK + _tuple_dag(60) + pickle.FROZENSET,
}


@pytest.mark.parametrize("where", list(DAG_CASES))
def test_a_key_that_would_take_for_ever_to_hash_is_refused_at_once(where, folder):
    path = folder / "dag.pkl"
    path.write_bytes(hp.program(DAG_CASES[where]))
    assert len(path.read_bytes()) < 500
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"uses a tuple holding containers as a diction"):
        persistence.load(path)
    assert time.perf_counter() - start < 1


def test_a_monitor_value_that_would_take_for_ever_to_print_is_refused_at_once(folder):
    from pylearn_vae.monitor import Monitor, MonitorChannel

    dag: list = []
    for _ in range(60):
        dag = [dag, dag]
    model = make_vae(seed=2)
    channel = MonitorChannel("valid_objective")
    channel.val_record, channel.epoch_record = [dag], [0]
    channel.batch_record, channel.example_record, channel.time_record = [0], [0], [0.0]
    Monitor.get_monitor(model).channels["valid_objective"] = channel
    path = folder / "printing.pkl"
    persistence.save(path, model)  # (the pickle memo keeps it small)
    start = time.perf_counter()
    with pytest.raises(
        ModelFileError, match="monitor channel 'valid_objective': val_record is not a list of"
    ):
        persistence.load(path)
    assert time.perf_counter() - start < 2
    channel.val_record = [1.5]
    Monitor.get_monitor(model).channels["other"] = channel  # (named otherwise)
    persistence.save(path, model)
    with pytest.raises(ModelFileError, match="monitor channel 'other' is not a channel of that"):
        persistence.load(path)
