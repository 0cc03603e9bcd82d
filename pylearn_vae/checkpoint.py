"""Checkpoints: everything needed to continue a run exactly.

A checkpoint is an HDF5 file (see :mod:`pylearn_vae.utils.hdf5`) holding the
model and its monitor history, plus a ``/state`` tree with the algorithm's
state (learning rate, learning-rule variables, shuffling generator and the
position inside the current epoch, update callbacks), every extension's and
the termination criterion's state, the state of every PyTensor random
generator in the compiled functions, the YAML the run was started from, and
whether the run has finished. Files are written atomically.
"""

from __future__ import annotations

import json

import numpy as np

from pylearn_vae.utils.hdf5 import (
    _write_header,
    load_params,
    open_file,
    read_tree,
    write_model,
    write_tree,
)
from pylearn_vae.utils.serial import ModelFileError, atomic_path
from pylearn_vae.utils.state import Stateful

__all__ = ["save_checkpoint", "load_checkpoint", "read_checkpoint_info", "config_differences"]


def _shared_rngs(train) -> dict:
    rngs = dict(train.algorithm.shared_rngs)
    for name, rng in train.model.monitor.shared_rngs.items():
        if name in rngs and rngs[name] is not rng:
            raise RuntimeError(
                f"two random generators are named {name!r}; checkpoints need unique names"
            )
        rngs[name] = rng
    return rngs


def _state_tree(train, finished: bool) -> dict:
    extensions = {
        str(i): e.state_dict() for i, e in enumerate(train.extensions) if isinstance(e, Stateful)
    }
    criterion = train.algorithm.termination_criterion
    rngs = {
        name: json.dumps(rng.get_value(borrow=True).bit_generator.state)
        for name, rng in _shared_rngs(train).items()
    }
    return {
        "finished": bool(finished),
        "algorithm": train.algorithm.state_dict(),
        "extensions": extensions,
        "termination": criterion.state_dict() if isinstance(criterion, Stateful) else {},
        "termination_class": type(criterion).__name__,
        "rngs": rngs,
    }


def save_checkpoint(path, train, finished: bool = False, config_text: str | None = None) -> None:
    """Write ``train``'s complete state to ``path`` (atomically)."""
    import h5py

    state = _state_tree(train, finished)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            _write_header(handle, "checkpoint")
            if config_text is not None:
                handle.attrs["config_yaml"] = config_text
            write_model(handle, train.model)
            write_tree(handle.create_group("state"), state)


def read_checkpoint_info(path) -> dict:
    """Return ``{"finished", "epochs_seen", "config_yaml"}`` of a checkpoint."""
    with open_file(path, "checkpoint") as handle:
        state = read_tree(handle["state"])
        epochs = (
            json.loads(handle["monitor"].attrs["json"])["epochs_seen"] if "monitor" in handle else 0
        )
        return {
            "finished": bool(state["finished"]),
            "epochs_seen": int(epochs),
            "config_yaml": str(handle.attrs.get("config_yaml", "")),
            "resume_position": int(state["algorithm"]["resume_position"]),
        }


def load_checkpoint(path, train) -> dict:
    """Restore ``train`` (already set up from the same YAML) from ``path``."""
    from pylearn_vae.utils.hdf5 import _restore_monitor

    with open_file(path, "checkpoint") as handle:
        try:
            model = train.model
            load_params(handle["params"], model, str(path))
            _restore_monitor(model, read_tree(handle["monitor"]))
            state = read_tree(handle["state"])
        except KeyError as exc:
            raise ModelFileError(f"{path}: damaged checkpoint ({exc})") from None
    train.algorithm.load_state_dict(state["algorithm"])
    for key, sub in state["extensions"].items():
        train.extensions[int(key)].load_state_dict(sub)
    criterion = train.algorithm.termination_criterion
    if isinstance(criterion, Stateful) and state["termination_class"] == type(criterion).__name__:
        criterion.load_state_dict(state["termination"])
    rngs = _shared_rngs(train)
    missing = sorted(set(rngs) - set(state["rngs"]))
    if missing:
        raise ModelFileError(f"{path}: no saved state for random generator(s) {', '.join(missing)}")
    for name, rng in rngs.items():
        generator = np.random.default_rng()
        generator.bit_generator.state = json.loads(state["rngs"][name])
        rng.set_value(generator, borrow=True)
    return state


def config_differences(old_text: str, new_text: str) -> list[str]:
    """Human-readable differences between two YAML configurations (parsed, not instantiated)."""
    from pylearn_vae.config import legacy, yaml_parse

    def plain(node):
        if isinstance(node, yaml_parse.ObjectProxy):
            name = legacy.map_name(node.callable_name) or node.callable_name
            return {"!obj": name, **{k: plain(v) for k, v in node.kwargs.items()}}
        if isinstance(node, dict):
            return {k: plain(v) for k, v in node.items()}
        if isinstance(node, list):
            return [plain(v) for v in node]
        if hasattr(node, "name") and hasattr(node, "mark"):
            return f"!{type(node).__name__}:{getattr(node, 'name', getattr(node, 'path', ''))}"
        return node

    environ = _PermissiveEnviron()
    old = plain(yaml_parse.load(old_text, environ=environ, instantiate=False))
    new = plain(yaml_parse.load(new_text, environ=environ, instantiate=False))
    out: list[str] = []

    def walk(a, b, path):
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                walk(
                    a.get(key, "<absent>"),
                    b.get(key, "<absent>"),
                    f"{path}.{key}" if path else str(key),
                )
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{path}[{i}]")
        elif a != b:
            out.append(f"{path or '<root>'}: {a!r} -> {b!r}")

    walk(old, new, "")
    return out


class _PermissiveEnviron(dict):
    """Leaves ``${VAR}`` as written when comparing configurations."""

    def __contains__(self, key) -> bool:
        return True

    def __getitem__(self, key):
        return "${" + key + "}"
