"""Crafted HDF5 model files: the cases (each a change to a real model file
and the error it must give), the folder they are made in, and a forged
string length no h5py call writes."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import h5py
import numpy as np

from pylearn_vae import persistence
from pylearn_vae.config import yaml_parse
from tests.helpers.configs import MODEL_YAML


def forge_string_length(path, value: str, length: int) -> None:
    """Make the header of the string attribute holding ``value`` declare ``length`` bytes.

    h5py stores a ``str`` attribute as a variable-length string: the header
    holds its length and the address of the global heap collection ("GCOL")
    that holds the text. ``value`` must occur once in the file.
    """
    data = bytearray(Path(path).read_bytes())
    encoded = value.encode()
    text_at = data.find(encoded)
    heap_at = data.rfind(b"GCOL", 0, text_at)
    descriptor = struct.pack("<IQ", len(encoded), heap_at)
    at = data.find(descriptor)
    assert text_at > 0 and heap_at > 0 and at > 0 and data.find(descriptor, at + 1) < 0
    data[at : at + 4] = struct.pack("<I", length)
    Path(path).write_bytes(bytes(data))


PARAM = "posterior_mu_W"  # a (5, 3) weight matrix
BIAS = "posterior_mu_b"
MARKER = "pwned"
SECRET = "secret"


def _replace(handle, name, **kwargs):
    del handle[name]
    return handle.create_dataset(name, **kwargs)


def _set_yaml(text):
    def change(handle, folder):
        handle.attrs["model_yaml"] = text(folder) if callable(text) else text

    return change


def _laughs() -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 10)}]")
    return "{" + ", ".join(lines) + "}"


def _vlen_numbers() -> np.ndarray:
    """One variable-length sequence of integers (an HDF5 "vlen" attribute that is no string)."""
    values = np.empty(1, dtype=h5py.vlen_dtype(np.dtype("int32")))
    values[0] = np.arange(3, dtype="int32")
    return values


def _vae_with(field: str) -> str:
    return MODEL_YAML.replace("nvis: 12,", f"nvis: 12, {field},")


def make_cases() -> list[tuple]:
    """(name, change(handle, folder), regex) for every crafted file: ``change``
    edits a copy of ``good.h5`` in a folder made by :func:`make_folder`; loading
    the result must raise a ModelFileError matching ``regex``."""
    cases = []

    def add(name, change, match):
        cases.append((name, change, match))

    # --- links ---------------------------------------------------------------
    add(
        "external link as a parameter",
        lambda h, f: (
            h.__delitem__(f"params/{PARAM}"),
            h["params"].__setitem__(PARAM, h5py.ExternalLink(str(f / "secret.h5"), "/x")),
        ),
        r"params/posterior_mu_W is a link to .*secret\.h5:/x; model and checkpoint files may not refer",
    )
    add(
        "external link as the params group",
        lambda h, f: (
            h.__delitem__("params"),
            h.__setitem__("params", h5py.ExternalLink(str(f / "secret.h5"), "/params")),
        ),
        r"/params is a link to .*secret\.h5",
    )
    add(
        "external link as the monitor",
        lambda h, f: (
            h.__delitem__("monitor"),
            h.__setitem__("monitor", h5py.ExternalLink(str(f / "secret.h5"), "/")),
        ),
        r"/monitor is a link to",
    )
    add(
        "external link to /etc/passwd",
        lambda h, f: h["params"].__setitem__("extra", h5py.ExternalLink("/etc/passwd", "/")),
        r"params/extra is a link to /etc/passwd",
    )
    add(
        "soft link inside",
        lambda h, f: (
            h.__delitem__(f"params/{BIAS}"),
            h["params"].__setitem__(BIAS, h5py.SoftLink("/params/posterior_log_sigma_b")),
        ),
        r"params/posterior_mu_b is a soft link to /params/posterior_log_sigma_b",
    )
    add(
        "dangling soft link",
        lambda h, f: h.__setitem__("dangling", h5py.SoftLink("/nowhere")),
        r"/dangling is a soft link to /nowhere",
    )
    add(
        "hard link cycle",
        lambda h, f: h["params"].__setitem__("loop", h["params"]),
        r"links back to a group seen before",
    )

    # --- data stored outside the file -----------------------------------------
    def external_param(target):
        def change(h, f):
            path = f / target
            _replace(
                h["params"], PARAM, shape=(5, 3), dtype="float32", external=[(str(path), 0, 60)]
            )

        return change

    add(
        "external raw storage: secret file",
        external_param("secret.bin"),
        r"dataset /params/posterior_mu_W stores its data in another file",
    )
    add("external raw storage: FIFO", external_param("fifo"), r"stores its data in another file")
    add(
        "external raw storage: /etc/passwd as a bias",
        lambda h, f: _replace(
            h["params"], BIAS, shape=(3,), dtype="float32", external=[("/etc/passwd", 0, 12)]
        ),
        r"dataset /params/posterior_mu_b stores its data in another file",
    )
    add(
        "external raw storage in an unused dataset",
        lambda h, f: h.create_dataset(
            "unused", shape=(4,), dtype="f8", external=[(str(f / "secret.bin"), 0, 32)]
        ),
        r"dataset /unused stores its data in another file",
    )

    def virtual(h, f):
        layout = h5py.VirtualLayout(shape=(5, 3), dtype="float32")
        layout[:] = h5py.VirtualSource(str(f / "secret.h5"), "x", shape=(5, 3))
        del h[f"params/{PARAM}"]
        h["params"].create_virtual_dataset(PARAM, layout)

    add("virtual dataset from another file", virtual, r"is a virtual dataset")

    # --- dtypes ---------------------------------------------------------------
    add(
        "object references",
        lambda h, f: _replace(
            h["params"], PARAM, data=np.array([[h.ref] * 3] * 5, dtype=h5py.ref_dtype)
        ),
        r"has dtype object, not a plain numeric type",
    )
    add(
        "region references",
        lambda h, f: _replace(h["params"], BIAS, shape=(3,), dtype=h5py.regionref_dtype),
        r"not a plain numeric type",
    )
    add(
        "variable-length strings",
        lambda h, f: _replace(
            h["params"],
            BIAS,
            data=np.array(["a", "b", "c"], dtype=object),
            dtype=h5py.string_dtype(),
        ),
        r"not a plain numeric type",
    )
    add(
        "fixed-length strings",
        lambda h, f: _replace(h["params"], BIAS, data=np.array([b"aaaa"] * 3)),
        r"has dtype \|S4, not a plain numeric type",
    )
    add(
        "compound dtype",
        lambda h, f: _replace(
            h["params"], BIAS, data=np.zeros(3, dtype=[("a", "f4"), ("b", "f4")])
        ),
        r"not a plain numeric type",
    )
    add(
        "integer parameter",
        lambda h, f: _replace(h["params"], BIAS, data=np.zeros(3, dtype="int32")),
        r"parameter 'posterior_mu_b' has dtype int32, expected floats",
    )
    add(
        "references in the monitor",
        lambda h, f: h["monitor/channels"].create_dataset(
            "refs", data=np.array([h.ref], dtype=h5py.ref_dtype)
        ),
        r"dataset /monitor/channels/refs has dtype object",
    )

    # --- shapes declared before data -------------------------------------------
    add(
        "declared (784, 10**9)",
        lambda h, f: _replace(
            h["params"], PARAM, shape=(784, 10**9), dtype="float32", chunks=(1, 1024)
        ),
        r"declares shape \(784, 1000000000\) \(3,136,000,000,000 bytes\)",
    )
    add(
        "declared (10**6, 10**6) in the monitor",
        lambda h, f: h["monitor"].create_dataset(
            "huge", shape=(10**6, 10**6), dtype="f8", chunks=(1, 1024)
        ),
        r"dataset /monitor/huge declares shape",
    )

    def many_large(h, f):
        for i in range(5):
            h.create_dataset(f"fill{i}", shape=(2**28 - 1,), dtype="f4", chunks=(1024,))

    add(
        "five unwritten 1 GiB datasets",
        many_large,
        r"dataset /fill\d declares 1,073,741,820 bytes but stores 0 \(unwritten or compressed",
    )
    add(
        "an unwritten dataset under /params",
        lambda h, f: h["params"].create_dataset("unused", shape=(10**6,), dtype="f4"),
        r"dataset /params/unused declares 4,000,000 bytes but stores 0",
    )

    def hard_linked_fill(h, f):
        h["monitor"].create_dataset("fill", shape=(2**20,), dtype="f8", chunks=(2**17,))
        for i in range(3):
            h["monitor"][f"again{i}"] = h["monitor/fill"]

    add(
        "an unwritten dataset hard-linked three times",
        hard_linked_fill,
        r"dataset /monitor/(fill|again\d) declares 8,388,608 bytes but stores 0",
    )
    add(
        "zeros compressed 1000 to 1",
        lambda h, f: h["monitor"].create_dataset(
            "zeros", data=np.zeros(2**22, "float32"), chunks=(2**18,), compression="gzip"
        ),
        r"dataset /monitor/zeros declares 16,777,216 bytes but stores \d",
    )
    add(
        "12 bytes in one 4 MiB chunk (a 2 GiB one costs 2 GiB to read)",
        lambda h, f: _replace(
            h["params"],
            BIAS,
            data=np.zeros(3, "float32"),
            maxshape=(None,),
            chunks=(2**20,),
            compression="gzip",
        ),
        r"stores its 12 bytes in chunks of 4,194,304 bytes",
    )
    add(
        "wrong shape",
        lambda h, f: _replace(h["params"], PARAM, data=np.zeros((3, 5), "float32")),
        r"parameter 'posterior_mu_W' has shape \(3, 5\) in the file, the model needs \(5, 3\)",
    )
    add(
        "scalar in place of a matrix",
        lambda h, f: _replace(h["params"], PARAM, data=np.float32(1)),
        r"has shape \(\) in the file",
    )

    # --- values ---------------------------------------------------------------
    for label, value, word in [
        ("NaN", np.nan, "NaN"),
        ("+inf", np.inf, "infinite"),
        ("-inf", -np.inf, "infinite"),
    ]:
        add(
            f"{label} bias",
            lambda h, f, value=value: h[f"params/{BIAS}"].__setitem__(1, value),
            rf"parameter 'posterior_mu_b' has {word} values",
        )

    # --- filters --------------------------------------------------------------
    add(
        "LZF filter (a plugin-style filter)",
        lambda h, f: _replace(h["params"], BIAS, data=np.zeros(3, "float32"), compression="lzf"),
        r"uses HDF5 filter 32000",
    )
    add(
        "scale-offset filter",
        lambda h, f: _replace(h["params"], BIAS, data=np.zeros(3, "float32"), scaleoffset=2),
        r"uses HDF5 filter 6",
    )

    # --- header attributes ----------------------------------------------------
    for label, value in [
        ("a string", "1"),
        ("a float", 1.5),
        ("negative", -1),
        ("an array", np.arange(2)),
    ]:
        add(
            f"format_version {label}",
            lambda h, f, value=value: h.attrs.__setitem__("format_version", value),
            r"attribute 'format_version' is .*, expected an integer from 1",
        )
    add(
        "format missing",
        lambda h, f: h.attrs.__delitem__("format"),
        r"not a pylearn_vae model \(no 'format'",
    )
    add(
        "checkpoint posing as model",
        lambda h, f: h.attrs.__setitem__("format", "checkpoint"),
        r"is a pylearn_vae checkpoint, not a model",
    )

    # --- model_yaml -----------------------------------------------------------
    add(
        "model_yaml missing",
        lambda h, f: h.attrs.__delitem__("model_yaml"),
        r"attribute 'model_yaml' is missing",
    )
    add(
        "model_yaml as bytes",
        _set_yaml(np.bytes_(b"!obj:os.system {}")),
        r"attribute 'model_yaml' is a bytes_, expected a string",
    )
    add(
        "model_yaml as numbers",
        _set_yaml(np.arange(4)),
        r"attribute 'model_yaml' is a ndarray, expected a string",
    )
    add(
        "model_yaml of 2 MB",
        _set_yaml("#" * (2 << 20)),
        r"attribute 'model_yaml' holds 2,097,152 characters",
    )
    hostile_yaml = {
        "!obj:os.system": lambda f: f"!obj:os.system {{command: 'touch {f / MARKER}'}}",
        "!obj:posix.system": lambda f: f"!obj:posix.system {{command: 'touch {f / MARKER}'}}",
        "!obj:subprocess.Popen": lambda f: (
            f"!obj:subprocess.Popen {{args: [touch, '{f / MARKER}']}}"
        ),
        "!obj:builtins.eval": lambda f: (
            f'!obj:builtins.eval {{source: \'open("{f / MARKER}", "w")\'}}'
        ),
        "!obj:eval (a builtin)": lambda f: f'!obj:eval {{source: \'open("{f / MARKER}", "w")\'}}',
        "!obj:io.FileIO": lambda f: f"!obj:io.FileIO {{file: '{f / MARKER}', mode: w}}",
        "walk !obj:pylearn_vae.utils.serial.os.system": lambda f: (
            f"!obj:pylearn_vae.utils.serial.os.system {{command: 'touch {f / MARKER}'}}"
        ),
        "walk !obj:pylearn_vae.models.vae.np.f2py.subprocess.Popen": lambda f: (
            f"!obj:pylearn_vae.models.vae.np.f2py.subprocess.Popen {{args: [touch, '{f / MARKER}']}}"
        ),
        "walk !obj:pylearn_vae.models.vae.VAE.__init__": lambda f: (
            "!obj:pylearn_vae.models.vae.VAE.__init__ {}"
        ),
        "walk !obj:pylearn_vae.space.np.save": lambda f: (
            f"!obj:pylearn_vae.space.np.save {{file: '{f / MARKER}', arr: [1]}}"
        ),
        "!obj:pylearn_vae.utils.serial.load": lambda f: (
            f"!obj:pylearn_vae.utils.serial.load {{path: '{f / 'good.pkl'}'}}"
        ),
        "!obj:pylearn_vae.train.Train": lambda f: (
            "!obj:pylearn_vae.train.Train {dataset: null, model: null}"
        ),
        "!obj:pylearn_vae.datasets.binarized_mnist.BinarizedMNIST": lambda f: (
            "!obj:pylearn_vae.datasets.binarized_mnist.BinarizedMNIST {which_set: train}"
        ),
        "!obj:pylearn_vae.models.vae.np.load": lambda f: (
            f"!obj:pylearn_vae.models.vae.np.load {{file: '{f / SECRET}.bin'}}"
        ),
        "!obj:antigravity.Fly (imports a module)": lambda f: "!obj:antigravity.Fly {}",
        "!obj:pylearn_vae.models.nonexistent.X": lambda f: (
            "!obj:pylearn_vae.models.nonexistent.X {}"
        ),
        "!obj:pylearn2.utils.serial.load (legacy name)": lambda f: (
            f"!obj:pylearn2.utils.serial.load {{filepath: '{f / 'good.pkl'}'}}"
        ),
        "!pkl: of a hostile pickle": lambda f: f"!pkl: '{f / 'evil.pkl'}'",
        "!pkl: of a good model (reads outside)": lambda f: f"!pkl: '{f / 'good.pkl'}'",
        "!pkl: nested in a VAE": lambda f: _vae_with(f"batch_size: !pkl: '{f / 'evil.pkl'}'"),
        "!import os": lambda f: "!import os",
        "!import:os.system": lambda f: "!import:os.system ''",
        "!import in a keyword": lambda f: _vae_with(
            "batch_size: !import pylearn_vae.models.vae.np.load"
        ),
        "python/object tag": lambda f: f"!!python/object/apply:os.system ['touch {f / MARKER}']",
        "billion laughs": lambda f: _laughs(),
        "billion laughs in a keyword": lambda f: _vae_with("extra: " + _laughs()),
        "50,000-deep nesting": lambda f: "[" * 50_000 + "]" * 50_000,
        "150-deep mapping": lambda f: "{a: " * 150 + "1" + "}" * 150,
        "recursive alias": lambda f: "&a [*a]",
        "escape character": lambda f: "!obj:pylearn_vae.space.VectorSpace {dim: 3}\x1b",
        "tab and control characters": lambda f: "\x07\x08",
        "not a VAE but a list": lambda f: "[1, 2]",
        "batch_size 2.5": lambda f: _vae_with("batch_size: 2.5"),
        "layer dim 10**9": lambda f: MODEL_YAML.replace("dim: 5", "dim: 1000000000", 1),
        "nvis 10**9": lambda f: MODEL_YAML.replace("nvis: 12", "nvis: 1000000000"),
        # Every integer is a size unless it allocates nothing (a seed), whatever its
        # keyword: a mixture prior's components, a flow count, a list's entries.
        "num_components 10**9": lambda f: MODEL_YAML.replace(
            "DiagonalGaussianPrior {}", "MixtureOfGaussiansPrior { num_components: 1000000000 }"
        ),
        "an unknown keyword's 10**9": lambda f: _vae_with("future_size: 1000000000"),
        "10**9 inside a list": lambda f: _vae_with("shape: [4, 1000000000]"),
    }
    matches = {
        "billion laughs": r"expands to more than 100,000 values",
        "billion laughs in a keyword": r"expands to more than 100,000 values",
        "50,000-deep nesting": r"nested (more than 100 levels deep|too deeply to parse)",
        "150-deep mapping": r"nested (more than 100 levels|too deeply)",
        "recursive alias": r"alias refers to a node that contains it",
        "escape character": r"character '\\x1b' at position \d+ is not allowed",
        "tab and control characters": r"is not allowed in YAML text",
        "python/object tag": r"unknown YAML tag",
        "not a VAE but a list": r"model_yaml describes a list, not a model",
        "!obj:pylearn2.utils.serial.load (legacy name)": r"unsupported Pylearn2 name 'pylearn2.utils.serial.load'",
        "batch_size 2.5": r"batch_size must be an integer, got 2.5",
        "layer dim 10**9": r"model_yaml asks for dim: 1000000000 at \S+model_yaml, line 7, column \d+, but no parameter",
        "nvis 10**9": r"model_yaml asks for nvis: 1000000000 at \S+, line 2, column 5",
        "num_components 10**9": r"model_yaml asks for num_components: 1000000000 at \S+, line 3",
        "an unknown keyword's 10**9": r"model_yaml asks for future_size: 1000000000",
        "10**9 inside a list": r"model_yaml asks for shape: 1000000000",
        "!pkl: of a hostile pickle": r"!pkl: may not be used in the YAML stored in a model",
        "!pkl: of a good model (reads outside)": r"!pkl: may not be used",
        "!pkl: nested in a VAE": r"!pkl: may not be used",
        "!import os": r"!import may not be used",
        "!import:os.system": r"!import may not be used",
        "!import in a keyword": r"!import may not be used",
    }
    for label, text in hostile_yaml.items():
        add(
            f"model_yaml {label}",
            _set_yaml(text),
            matches.get(
                label,
                r"may not be used here: only classes of pylearn_vae\.models, pylearn_vae\.space",
            ),
        )

    # --- attributes (checked before any value is read) -------------------------
    add(
        "model_yaml of 20 MB",
        _set_yaml("#" * (20 << 20)),
        r"attribute 'model_yaml' of / declares 20,971,520 bytes, more than the 16,777,216 "
        r"pylearn_vae reads",
    )

    # Large fixed-size values only fit in a version 2 object header (which
    # h5py writes for a group that tracks creation order).
    def large_fixed(name, value):
        def change(h, f):
            h["params"].create_group("junk", track_order=True).attrs[name] = value

        return change

    add(
        "20 MB of fixed-length bytes as an unread attribute",
        large_fixed("text", np.bytes_(b"#" * (20 << 20))),
        r"attribute 'text' of /params/junk declares 20,971,520 bytes, more than the",
    )
    add(
        "20 MB of integers as an unread attribute",
        large_fixed("numbers", np.zeros(5 << 20, "int32")),
        r"attribute 'numbers' of /params/junk declares 20,971,520 bytes",
    )

    def five_large(h, f):
        for i in range(5):
            h["monitor"].attrs[f"pad{i}"] = "#" * (15 << 20)

    add(
        "five 15 MB attributes",
        five_large,
        r"its attributes declare more than 67,108,864 bytes in total",
    )
    add(
        "model_yaml as an object reference",
        lambda h, f: h.attrs.create("model_yaml", data=h["params"].ref, dtype=h5py.ref_dtype),
        r"attribute 'model_yaml' of / is not a string or a number \(HDF5 type class 7\)",
    )
    add(
        "model_yaml as a variable-length sequence",
        _set_yaml(_vlen_numbers()),
        r"attribute 'model_yaml' of / is not a string or a number \(HDF5 type class 9\)",
    )
    add(
        "model_yaml as a compound",
        _set_yaml(np.zeros((), dtype=[("a", "f4"), ("b", "i4")])),
        r"attribute 'model_yaml' of / is not a string or a number \(HDF5 type class 6\)",
    )
    add(
        "model_yaml as a list of strings",
        lambda h, f: h.attrs.__setitem__("model_yaml", [MODEL_YAML, MODEL_YAML]),
        r"attribute 'model_yaml' of / is an array of strings",
    )
    add(
        "dataset_yaml as numbers",
        lambda h, f: h.attrs.__setitem__("dataset_yaml", np.arange(3)),
        r"attribute 'dataset_yaml' is a ndarray, expected a string",
    )
    add(
        "format as bytes",
        lambda h, f: h.attrs.__setitem__("format", np.bytes_(b"model")),
        r"attribute 'format' is a bytes_, expected a string",
    )
    add(
        "40 attributes on the root",
        lambda h, f: [h.attrs.__setitem__(f"a{i}", i) for i in range(40)],
        r"/ has 4\d attributes, more than the 32 pylearn_vae reads",
    )

    def newer_header(h, f):
        tree = dict(h["monitor"].attrs)
        del h["monitor/channels/valid_objective"]
        group = h["monitor/channels"].create_group("valid_objective", track_order=True)
        for key, value in tree.items():
            group.attrs[key] = value

    add(
        "a string attribute in a version 2 object header",
        newer_header,
        r"attribute 'json' of /monitor/channels/valid_objective is stored in a layout "
        r"pylearn_vae never writes",
    )

    # --- monitor tree ---------------------------------------------------------
    def deep_monitor(h, f):
        group = h["monitor"]
        for _ in range(40):
            group = group.create_group("g")

    add("monitor 40 groups deep", deep_monitor, r"nested more than 32 levels deep")
    add(
        "monitor JSON not JSON",
        lambda h, f: h["monitor"].attrs.__setitem__("json", "{not json"),
        r"the JSON attribute of /monitor is damaged",
    )
    add(
        "monitor JSON 100,000 deep",
        lambda h, f: h["monitor"].attrs.__setitem__("json", "[" * 100_000 + "]" * 100_000),
        r"the JSON attribute of /monitor is (damaged|not an object)",
    )
    add(
        "monitor JSON a list",
        lambda h, f: h["monitor"].attrs.__setitem__("json", "[1]"),
        r"the JSON attribute of /monitor is not an object",
    )
    add(
        "monitor counter negative",
        lambda h, f: h["monitor"].attrs.__setitem__(
            "json", h["monitor"].attrs["json"].replace('"epochs_seen": 0', '"epochs_seen": -5')
        ),
        r"monitor counter 'epochs_seen' is -5",
    )
    add(
        "monitor channel listed but not stored",
        lambda h, f: h["monitor"].attrs.__setitem__(
            "json",
            h["monitor"].attrs["json"].replace('"channel_order": [', '"channel_order": ["ghost", '),
        ),
        r"damaged monitor history: monitor channel 'ghost' is listed but not stored",
    )
    add(
        "monitor records of different lengths",
        lambda h, f: _replace(
            h["monitor/channels/valid_objective"], "epoch_record", data=np.arange(3)
        ),
        r"monitor channel 'valid_objective': epoch_record does not match val_record",
    )

    def channel_order(names):
        def change(h, f):
            tree = json.loads(h["monitor"].attrs["json"])
            tree["channel_order"] = names
            h["monitor"].attrs["json"] = json.dumps(tree)

        return change

    add(
        "one channel name 300,000 times in channel_order",
        channel_order(["valid_objective"] * 300_000),
        r"monitor field 'channel_order' lists 300,000 channels, more than 10,000",
    )
    add(
        "a channel named three times",
        channel_order(["valid_objective"] * 3),
        r"monitor field 'channel_order' names a channel more than once",
    )
    add(
        "a channel name that is a number",
        channel_order([5]),
        r"monitor field 'channel_order' holds a int, not a channel name",
    )
    add(
        "an infinite epoch in the monitor",
        lambda h, f: _replace(
            h["monitor/channels/valid_objective"], "epoch_record", data=np.array([0.0, np.inf])
        ),
        r"monitor channel 'valid_objective': epoch_record holds NaN or infinity",
    )
    add(
        "monitor values as references",
        lambda h, f: _replace(
            h["monitor/channels/valid_objective"],
            "val_record",
            data=np.array([h.ref] * 2, dtype=h5py.ref_dtype),
        ),
        r"dataset /monitor/channels/valid_objective/val_record has dtype object",
    )
    return cases


def make_folder(folder: Path) -> Path:
    """Fill ``folder`` with what the cases use: ``good.h5`` (a model with a monitor
    history), ``good.pkl``, secrets a case may try to reach, a payload pickle, a FIFO."""
    model = yaml_parse.load(MODEL_YAML)
    from pylearn_vae.monitor import Monitor, MonitorChannel

    channel = MonitorChannel("valid_objective")
    channel.val_record, channel.epoch_record = [110.5, 99.25], [0, 1]
    channel.batch_record, channel.example_record, channel.time_record = [0, 5], [0, 500], [0.0, 1.5]
    Monitor.get_monitor(model).channels["valid_objective"] = channel
    persistence.save(folder / "good.h5", model)
    persistence.save(folder / "good.pkl", model)
    with h5py.File(folder / "secret.h5", "w") as handle:
        handle["x"] = np.full((5, 3), 7.0, "float32")
        handle["params"] = np.zeros(3)
    (folder / "secret.bin").write_bytes(np.full(16, 7.0).tobytes())
    (folder / SECRET).write_text("top secret\n")
    (folder / "evil.pkl").write_bytes(pickle.dumps(_Evil(str(folder / MARKER))))
    os.mkfifo(folder / "fifo")
    return folder


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
