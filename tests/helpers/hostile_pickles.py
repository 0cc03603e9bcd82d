"""Generators of hostile pickles for the crafted-input tests.

Each case is a :class:`Case`: the bytes of a ``.pkl`` file, the marker file a
successful payload would create (or the outside file it would read), and
what the loader must answer. Pickles are assembled opcode by opcode so that
they can say things no ``pickle.dumps`` call writes (dotted global names,
refused opcodes, lying lengths).
"""

from __future__ import annotations

import functools
import importlib
import io
import pickle
import struct
from dataclasses import dataclass

import numpy as np

MARKER = "pwned"
SECRET = "secret.txt"

UNSAFE = r"refus|not allowed|allow-list|may not|written by Pylearn2"
MALFORMED = r"not a valid pylearn_vae model file|malformed pickle"


@dataclass
class Case:
    name: str
    data: bytes
    match: str = UNSAFE
    #: The payload really acts when unpickled by ``pickle.loads``.
    live: bool = False


# --- opcode helpers ------------------------------------------------------------


def text(value: str) -> bytes:
    raw = value.encode()
    if len(raw) < 256:
        return pickle.SHORT_BINUNICODE + bytes([len(raw)]) + raw
    return pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw


def integer(value: int) -> bytes:
    return pickle.BININT + struct.pack("<i", value)


def tup(*items: bytes) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def lst(*items: bytes) -> bytes:
    return pickle.EMPTY_LIST + pickle.MARK + b"".join(items) + pickle.APPENDS


def stack_global(module: str, name: str) -> bytes:
    return text(module) + text(name) + pickle.STACK_GLOBAL


def text_global(module: str, name: str) -> bytes:
    return pickle.GLOBAL + module.encode() + b"\n" + name.encode() + b"\n"


def program(body: bytes, proto: int = 4) -> bytes:
    return pickle.PROTO + bytes([proto]) + body + pickle.STOP


def call(global_bytes: bytes, args: bytes) -> bytes:
    return global_bytes + args + pickle.REDUCE


# --- payloads: (callable's real module.name, argument builder) -----------------


def _payloads(folder: str) -> dict:
    marker = f"{folder}/{MARKER}"
    secret = f"{folder}/{SECRET}"
    inner = program(call(stack_global("os", "system"), tup(text(f"touch {marker}"))))
    return {
        "os.system": tup(text(f"touch {marker}")),
        "posix.system": tup(text(f"touch {marker}")),
        "subprocess.Popen": tup(lst(text("touch"), text(marker))),
        "subprocess.call": tup(lst(text("touch"), text(marker))),
        "io.FileIO": tup(text(marker), text("w")),
        "io.open": tup(text(marker), text("w")),
        "builtins.open": tup(text(marker), text("w")),
        "builtins.exec": tup(text(f"open({marker!r}, 'w').close()")),
        "builtins.eval": tup(text(f"open({marker!r}, 'w').close()")),
        "numpy.save": tup(text(marker + ".npy"), lst(integer(1))),
        "numpy.fromfile": tup(text(secret)),
        "numpy.loadtxt": tup(text(secret)),
        "pickle.loads": tup(pickle.SHORT_BINBYTES + bytes([len(inner)]) + inner),
        "importlib.import_module": tup(text("os")),
        "shutil.copyfile": tup(text(secret), text(marker)),
    }


# Payloads with no effect a test can observe (they only hand back a module).
_INERT = {"importlib.import_module"}

# Attribute paths from modules a model pickle legitimately names.
_WALK_ROOTS = (
    "pylearn_vae.space",
    "pylearn_vae.utils.serial",
    "pylearn_vae.utils.files",
    "pylearn_vae.utils.safe_pickle",
    "pylearn_vae.persistence.pickle_file",
    "pylearn_vae.persistence.safe_pickle",
    "pylearn_vae.persistence.hdf5_file",
    "pylearn_vae.models.vae",
    "pylearn_vae.models.vae.conditional",
    "pylearn_vae.monitor",
    "pylearn_vae.utils.rng",
    "numpy",
    "numpy.random._pickle",
    "collections",
    "pytensor.tensor.sharedvar",
)
_WALK_PATHS = (
    "np.f2py.subprocess.Popen",
    "np.f2py.os.system",
    "os.system",
    "io.FileIO",
    "io.open",
    "pickle.loads",
    "importlib.import_module",
    "np.save",
    "np.fromfile",
    "np.loadtxt",
    "f2py.subprocess.Popen",
    "f2py.os.system",
    "save",
    "fromfile",
    "np.lib.npyio.pickle.loads",
    "pytensor.compile.function.types.os.system",
)


def _qualified(obj) -> str | None:
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    return f"{module}.{name}" if module and name else None


def _endpoint(root: str, path: str):
    try:
        return functools.reduce(getattr, path.split("."), importlib.import_module(root))
    except (AttributeError, ImportError):
        return None


def _payload_key(obj, payloads: dict) -> str | None:
    for key in payloads:
        module, name = key.rsplit(".", 1)
        try:
            if getattr(importlib.import_module(module), name) is obj:
                return key
        except (ImportError, AttributeError):
            continue
    return None


def walk_cases(folder: str) -> list[Case]:
    """Dotted attribute walks from allowed modules to functions that act."""
    payloads = _payloads(folder)
    cases = []
    for root in _WALK_ROOTS:
        for path in _WALK_PATHS:
            key = _payload_key(_endpoint(root, path), payloads)
            if key is None:
                continue
            args = payloads[key]
            live = key not in _INERT
            cases.append(
                Case(
                    f"walk STACK_GLOBAL {root}:{path}",
                    program(call(stack_global(root, path), args)),
                    live=live,
                )
            )
            cases.append(
                Case(
                    f"walk GLOBAL {root}:{path}",
                    program(call(text_global(root, path), args), 4),
                    live=live,
                )
            )
    return cases


def direct_cases(folder: str) -> list[Case]:
    """Functions named plainly, by STACK_GLOBAL and by GLOBAL (protocol 0 to 5)."""
    cases = []
    for key, args in _payloads(folder).items():
        module, name = key.rsplit(".", 1)
        live = key not in _INERT
        cases.append(
            Case(
                f"direct STACK_GLOBAL {key}",
                program(call(stack_global(module, name), args)),
                live=live,
            )
        )
        for proto in (0, 2, 5):
            body = call(text_global(module, name), args)
            data = body + pickle.STOP if proto == 0 else program(body, proto)
            cases.append(Case(f"direct GLOBAL p{proto} {key}", data, live=live))
    for module, name in [
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        ("builtins", "object"),
        ("builtins", "bytearray"),
        ("builtins", "range"),
        ("builtins", "set"),
        ("copyreg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("copyreg", "__newobj_ex__"),
        ("functools", "partial"),
        ("operator", "attrgetter"),
        ("operator", "methodcaller"),
        ("types", "FunctionType"),
        ("types", "CodeType"),
        ("runpy", "run_path"),
        ("numpy", "load"),
        ("numpy", "memmap"),
        ("numpy", "ndarray"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.lib.format", "open_memmap"),
        ("pytensor.compile.function.types", "Function"),
        ("pylearn_vae.utils.serial", "load"),
        ("pylearn_vae.utils.serial", "save"),
        ("pylearn_vae.persistence", "load"),
        ("pylearn_vae.persistence.model_file", "save"),
        ("pylearn_vae.persistence.checkpoint", "load_checkpoint"),
        ("pylearn_vae.config.yaml_parse", "load"),
        ("pylearn_vae.datasets.binarized_mnist", "BinarizedMNIST"),
        ("pylearn_vae.train", "Train"),
        ("pylearn_vae.models.vae", "np"),
        ("pylearn_vae.models.vae", "math"),
        ("pylearn_vae.models.mlp", "MLP.__init__"),
        ("pylearn_vae.models.mlp", "MLP.__init__.__globals__"),
        ("pylearn_vae.space", "VectorSpace.__subclasses__"),
        ("pylearn_vae.models", "__builtins__"),
        ("pylearn2.models.mlp", "MLP"),
        ("theano.tensor.sharedvar", "TensorSharedVariable"),
        ("__main__", "Evil"),
        ("pylearn_vae.models.vae.kl", "find_integrator_for"),
        ("pylearn_vae.models..vae", "VAE"),
        ("pylearn_vae.models.vae.__init__", "VAE"),
        ("pylearn_vae.models.vae.kl.__main__", "VAE"),
        ("pylearn_vae.models.vae", ""),
    ]:
        cases.append(
            Case(f"name {module}:{name}", program(call(stack_global(module, name), tup())))
        )
    return cases


def opcode_cases(folder: str) -> list[Case]:
    """Refused opcodes and allowed names used in ways a model pickle never does."""
    marker = f"{folder}/{MARKER}"
    vae = stack_global("pylearn_vae.models.vae", "VAE")
    space = stack_global("pylearn_vae.space", "VectorSpace")
    dtype = stack_global("numpy", "dtype")
    frombuffer = stack_global("numpy._core.numeric", "_frombuffer")
    f4 = call(dtype, tup(text("f4"), pickle.NEWFALSE, pickle.NEWTRUE))
    touch = text(f"touch {marker}")
    cases = [
        Case(
            "INST os.system",
            b"(" + b"S'touch " + marker.encode() + b"'\n" + b"ios\nsystem\n.",
            live=True,
        ),
        Case(
            "OBJ os.system",
            program(pickle.MARK + stack_global("os", "system") + touch + pickle.OBJ, 2),
            live=True,
        ),
        Case("OBJ allowed class", program(pickle.MARK + space + integer(5) + pickle.OBJ)),
        Case("INST allowed class", b"(I5\nipylearn_vae.space\nVectorSpace\n."),
        Case("EXT1", program(pickle.EXT1 + b"\x01")),
        Case("EXT2", program(pickle.EXT2 + b"\x01\x00")),
        Case("EXT4", program(pickle.EXT4 + b"\x01\x00\x00\x00")),
        Case("PERSID", b"Pos.system\n."),
        Case("BINPERSID", program(text("x") + pickle.BINPERSID)),
        Case("NEXT_BUFFER", program(pickle.NEXT_BUFFER, 5)),
        Case("READONLY_BUFFER", program(pickle.NEXT_BUFFER + pickle.READONLY_BUFFER, 5)),
        Case("REDUCE on a model class", program(call(vae, tup()))),
        Case("REDUCE on a space with arguments", program(call(space, tup(integer(10**9))))),
        Case("NEWOBJ with arguments", program(space + tup(integer(10**9)) + pickle.NEWOBJ)),
        Case(
            "NEWOBJ_EX with keywords",
            program(
                space
                + tup()
                + pickle.EMPTY_DICT
                + text("dim")
                + integer(5)
                + pickle.SETITEM
                + pickle.NEWOBJ_EX
            ),
        ),
        Case("NEWOBJ of a wrapper", program(dtype + tup() + pickle.NEWOBJ)),
        Case(
            "BUILD on a class (monkeypatch)",
            program(
                vae
                + tup(pickle.NONE, pickle.EMPTY_DICT + text("__init__") + dtype + pickle.SETITEM)
                + pickle.BUILD
            ),
        ),
        Case(
            "BUILD on a function",
            program(
                dtype + pickle.EMPTY_DICT + text("x") + integer(1) + pickle.SETITEM + pickle.BUILD
            ),
        ),
        Case("BUILD on a string", program(text("s") + pickle.EMPTY_DICT + pickle.BUILD)),
        Case(
            "APPENDS on a model object",
            program(space + tup() + pickle.NEWOBJ + pickle.MARK + integer(1) + pickle.APPENDS),
        ),
        Case("APPEND on a dict", program(pickle.EMPTY_DICT + integer(1) + pickle.APPEND)),
        Case(
            "SETITEMS on a model object",
            program(
                space
                + tup()
                + pickle.NEWOBJ
                + pickle.MARK
                + text("dim")
                + integer(1)
                + pickle.SETITEMS
            ),
        ),
        Case(
            "SETITEM on a list",
            program(pickle.EMPTY_LIST + integer(0) + integer(1) + pickle.SETITEM),
        ),
        Case(
            "ADDITEMS on a list",
            program(pickle.EMPTY_LIST + pickle.MARK + integer(1) + pickle.ADDITEMS),
        ),
        Case("dtype object", program(call(dtype, tup(text("O"), pickle.NEWFALSE, pickle.NEWTRUE)))),
        Case("dtype void", program(call(dtype, tup(text("V8"), pickle.NEWFALSE, pickle.NEWTRUE)))),
        Case(
            "dtype unicode", program(call(dtype, tup(text("U10"), pickle.NEWFALSE, pickle.NEWTRUE)))
        ),
        Case(
            "dtype datetime", program(call(dtype, tup(text("M8"), pickle.NEWFALSE, pickle.NEWTRUE)))
        ),
        Case("dtype from a list", program(call(dtype, tup(lst(tup(text("a"), text("O"))))))),
        Case(
            "frombuffer object dtype",
            program(
                call(
                    frombuffer,
                    tup(
                        pickle.SHORT_BINBYTES + b"\x08" + b"\0" * 8,
                        call(dtype, tup(text("O"))),
                        tup(integer(1)),
                        text("C"),
                    ),
                )
            ),
        ),
        Case(
            "frombuffer shape larger than data",
            program(
                call(
                    frombuffer,
                    tup(
                        pickle.SHORT_BINBYTES + b"\x08" + b"\0" * 8,
                        f4,
                        tup(integer(100000), integer(100000)),
                        text("C"),
                    ),
                )
            ),
        ),
        Case(
            "frombuffer negative shape",
            program(
                call(
                    frombuffer,
                    tup(
                        pickle.SHORT_BINBYTES + b"\x04" + b"\0" * 4, f4, tup(integer(-1)), text("C")
                    ),
                )
            ),
        ),
        Case(
            "frombuffer from a list",
            program(call(frombuffer, tup(lst(integer(1)), f4, tup(integer(1)), text("C")))),
        ),
        Case(
            "bit generator of a model class",
            program(call(stack_global("numpy.random._pickle", "__bit_generator_ctor"), tup(vae))),
        ),
        Case(
            "RandomState with a foreign constructor",
            program(
                call(
                    stack_global("numpy.random._pickle", "__randomstate_ctor"),
                    tup(text("MT19937"), stack_global("collections", "OrderedDict")),
                )
            ),
        ),
        Case(
            "Generator with an unknown bit generator",
            program(
                call(stack_global("numpy.random._pickle", "__generator_ctor"), tup(text("Philox")))
            ),
        ),
        Case(
            "SeedSequence unpickler with another class",
            program(
                call(
                    stack_global("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
                    tup(space, integer(0), pickle.NONE),
                )
            ),
        ),
    ]
    # Declared lengths far beyond the file: must fail without allocating them.
    for opcode, name in [
        (pickle.BYTEARRAY8, "BYTEARRAY8"),
        (pickle.BINBYTES8, "BINBYTES8"),
        (pickle.BINUNICODE8, "BINUNICODE8"),
        (pickle.FRAME, "FRAME"),
    ]:
        cases.append(
            Case(
                f"6 GiB {name}",
                program(opcode + struct.pack("<Q", 6 << 30) + b"x" * 16, 5),
                MALFORMED,
            )
        )
    cases.append(
        Case(
            "2 GiB LONG4",
            program(pickle.LONG4 + struct.pack("<i", 2**31 - 1) + b"\x01" * 8),
            MALFORMED,
        )
    )
    cases.append(Case("memo reference to nothing", program(pickle.BINGET + b"\x07"), MALFORMED))
    cases.append(Case("truncated", program(text("abc"))[:-3], MALFORMED))
    return cases


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def numpy_cases(folder: str) -> list[Case]:
    """Object arrays written by NumPy itself."""
    marker = f"{folder}/{MARKER}"
    cases = []
    for proto in (2, 4, 5):
        evil = np.array([_Evil(marker), 1], dtype=object)
        cases.append(
            Case(
                f"object array with a payload p{proto}",
                pickle.dumps(evil, protocol=proto),
                live=True,
            )
        )
        cases.append(
            Case(
                f"object array of ints p{proto}",
                pickle.dumps(np.array([1, 2], dtype=object), protocol=proto),
            )
        )
        cases.append(
            Case(
                f"structured array with an object field p{proto}",
                pickle.dumps(np.zeros(2, dtype=[("a", "O")]), protocol=proto),
            )
        )
    return cases


class _SwapPickler(pickle._Pickler):
    """Pickles a real model but replaces one object by a call to a payload,
    naming the payload's function by any (module, name) pair."""

    def __init__(self, file, victim, module: str, name: str, args: tuple) -> None:
        super().__init__(file, protocol=5)
        self.victim = victim
        self.module = module
        self.name = name
        self.args = args

    def reducer_override(self, obj):
        if obj is self.victim:
            return (_placeholder, self.args)
        return NotImplemented

    def save(self, obj, save_persistent_id=True):
        if obj is _placeholder:
            super().save(self.module)
            super().save(self.name)
            self.write(pickle.STACK_GLOBAL)
            return
        super().save(obj, save_persistent_id)


def _placeholder(*args):  # stands in for the payload function while pickling
    raise AssertionError("never called")


def swapped_model_cases(model, folder: str) -> list[Case]:
    """A real model's pickle with one of its objects replaced by a payload."""
    marker = f"{folder}/{MARKER}"
    victims = {
        "model's first layer": model.posterior.mlp.layers[0]
        if hasattr(model, "posterior")
        else model,
        "model's input space": model.get_input_space(),
        "a parameter": model.get_params()[0],
        "the prior": getattr(model, "prior", model),
    }
    names = [
        ("pylearn_vae.space", "np.f2py.subprocess.Popen", (["touch", marker],)),
        ("pylearn_vae.persistence.pickle_file", "io.FileIO", (marker, "w")),
        ("pylearn_vae.utils.files", "os.system", (f"touch {marker}",)),
        ("os", "system", (f"touch {marker}",)),
        ("numpy", "save", (marker + ".npy", [1])),
    ]
    cases = []
    for victim_name, victim in victims.items():
        for module, name, args in names:
            buffer = io.BytesIO()
            _SwapPickler(buffer, victim, module, name, args).dump(model)
            cases.append(
                Case(f"real model, {victim_name} -> {module}:{name}", buffer.getvalue(), live=True)
            )
    return cases
