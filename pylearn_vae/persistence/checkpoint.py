"""Checkpoints: everything needed to continue a run exactly.

A checkpoint is an HDF5 file (see :mod:`pylearn_vae.persistence.hdf5_file`)
holding the model and its monitor history as a model file does (see
:mod:`pylearn_vae.persistence.model_h5`), plus a ``/state`` tree: the
algorithm's state (learning rate, learning-rule variables, shuffling
generator and the position inside the current epoch, update callbacks),
every extension's and the termination criterion's state, the state of every
PyTensor random generator in the compiled functions, the YAML the run was
started from, and whether the run has finished. Files are written
atomically.

:func:`read_checkpoint` is the only door from a checkpoint's bytes to
objects. :func:`restore_checkpoint` first checks what it read against the
training objects (parameters finite and of the right shapes, the position
within an epoch of this run, epoch-counter offsets within the epochs seen,
one saved state per stateful extension, random generator states that NumPy
accepts), then restores the monitor, the parameters and every object's
state through their public ``load_state_dict`` methods. Every problem is a
:class:`~pylearn_vae.utils.files.ModelFileError` naming the file and the
field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from pylearn_vae import text
from pylearn_vae.persistence.checks import all_params, check_savable
from pylearn_vae.persistence.hdf5_file import (
    create_file,
    read_text_attribute,
    read_tree,
    reading,
    write_header,
    write_tree,
)
from pylearn_vae.persistence.model_h5 import read_params, restore_monitor, set_params, write_model
from pylearn_vae.utils.files import ModelFileError, atomic_path
from pylearn_vae.utils.rng import register_rng
from pylearn_vae.utils.state import Stateful, random_state_from_dict

__all__ = [
    "Checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "read_checkpoint_info",
    "restore_checkpoint",
    "save_checkpoint",
]


def _shared_rngs(train) -> dict:
    rngs = dict(train.algorithm.shared_rngs)
    for rng in train.model.monitor.shared_rngs.values():
        register_rng(rngs, rng)
    return rngs


def _state_tree(train, finished: bool) -> dict:
    extensions = {
        str(i): e.state_dict() for i, e in enumerate(train.extensions) if isinstance(e, Stateful)
    }
    extension_classes = {
        str(i): type(e).__name__ for i, e in enumerate(train.extensions) if isinstance(e, Stateful)
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
        "extension_classes": extension_classes,
        "termination": criterion.state_dict() if isinstance(criterion, Stateful) else {},
        "termination_class": type(criterion).__name__,
        "rngs": rngs,
    }


def save_checkpoint(path, train, finished: bool = False, config_text: str | None = None) -> None:
    """Write ``train``'s complete state to ``path`` (atomically)."""
    check_savable(train.model, path)
    state = _state_tree(train, finished)
    with atomic_path(path) as tmp:
        with create_file(tmp) as handle:
            write_header(handle, "checkpoint")
            if config_text is not None:
                handle.attrs["config_yaml"] = config_text
            write_model(handle, train.model)
            write_tree(handle.create_group("state"), state)


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _field(tree: dict, path: str, where: str):
    """``tree[a][b]...`` for ``path`` ``"a/b"``, or a ModelFileError naming the field."""
    node = tree
    for key in path.split("/"):
        if not isinstance(node, dict) or key not in node:
            raise ModelFileError(f"{where}: damaged checkpoint: field state/{path} is missing")
        node = node[key]
    return node


def _read_state(handle, where: str) -> tuple[dict, int]:
    if "state" not in handle or "monitor" not in handle:
        raise ModelFileError(f"{where}: damaged checkpoint: group 'state' or 'monitor' is missing")
    state = read_tree(handle["state"], where)
    epochs = read_tree(handle["monitor"], where).get("epochs_seen")
    if not _is_int(epochs) or not 0 <= epochs < 1 << 40:
        raise ModelFileError(
            f"{where}: damaged checkpoint: monitor epochs_seen is {epochs!r}, expected an integer >= 0"
        )
    finished = _field(state, "finished", where)
    if not isinstance(finished, bool):
        raise ModelFileError(
            f"{where}: damaged checkpoint: field state/finished is {finished!r}, expected true or false"
        )
    position = _field(state, "algorithm/resume_position", where)
    if not _is_int(position) or position < 0:
        raise ModelFileError(
            f"{where}: damaged checkpoint: field state/algorithm/resume_position is {position!r}, "
            "expected an integer >= 0"
        )
    return state, int(epochs)


def _check_position(state: dict, train, where: str) -> None:
    """The saved position inside the epoch must lie inside this run's epoch."""
    batch_size = train.algorithm.batch_size
    examples = train.dataset.get_design_matrix().shape[0]
    batches = math.ceil(examples / batch_size)
    position = int(state["algorithm"]["resume_position"])
    if position >= batches:
        raise ModelFileError(
            f"{where}: field state/algorithm/resume_position is {position}, but an epoch of "
            f"this run has {batches} minibatches ({examples} examples, batch_size {batch_size}); "
            "the checkpoint is damaged or belongs to another configuration"
        )
    if position and not isinstance(state["algorithm"].get("epoch_rng"), dict):
        raise ModelFileError(
            f"{where}: field state/algorithm/epoch_rng is missing for a run stopped mid-epoch"
        )
    threads = state["algorithm"].get("threads", {})
    for key, top in (("count", 1 << 12), ("epochs_since", 1 << 40)):
        value = threads.get(key, 0) if isinstance(threads, dict) else None
        if not (_is_int(value) and 0 <= value <= top):
            raise ModelFileError(
                f"{where}: field state/algorithm/threads/{key} is {value!r}, expected an integer "
                f"from 0 to {top}; the checkpoint is damaged"
            )
    # The shuffling generators' states are tried on throwaway generators
    # first: a bad one is named now, before anything is restored.
    for name in ("rng", "epoch_rng"):
        saved = state["algorithm"].get(name)
        if name == "epoch_rng" and not position:
            continue
        try:
            if not 0 <= int(saved["pos"]) <= 624:  # (older NumPy takes any position)
                raise ValueError(f"pos {saved['pos']} is not from 0 to 624")
            random_state_from_dict(np.random.RandomState(), saved)
        except (KeyError, ValueError, TypeError, IndexError, OverflowError) as exc:
            raise ModelFileError(
                f"{where}: field state/algorithm/{name} is not a valid random state "
                f"({type(exc).__name__}: {exc}); start over with --restart or use another "
                "checkpoint"
            ) from None


#: How deeply termination criteria may nest (``And`` of ``Or`` of ...).
MAX_TERMINATION_DEPTH = 64


def _check_offsets(
    tree, epochs: int, where: str, path: str = "state/termination", depth: int = 0
) -> None:
    """Epoch-counter offsets (``_offset``) must be None or between 0 and the epochs seen."""
    if not isinstance(tree, dict):
        return
    if depth > MAX_TERMINATION_DEPTH:
        raise ModelFileError(
            f"{where}: field state/termination is nested more than {MAX_TERMINATION_DEPTH} "
            "levels deep; the checkpoint is damaged"
        )
    for key, value in tree.items():
        if key == "_offset" and value is not None and not (_is_int(value) and 0 <= value <= epochs):
            raise ModelFileError(
                f"{where}: field {path}/_offset is {value!r}, expected none or an integer from 0 "
                f"to the {epochs} epochs seen; the checkpoint is damaged"
            )
        _check_offsets(value, epochs, where, f"{path}/{key}", depth + 1)


def _check_indices(states, items: list, where: str, field: str) -> None:
    if not isinstance(states, dict):
        raise ModelFileError(f"{where}: field {field} is not a group")
    for key in states:
        if not (
            key.isascii()
            and key.isdigit()
            and int(key) < len(items)
            and isinstance(items[int(key)], Stateful)
        ):
            raise ModelFileError(
                f"{where}: field {field}/{key} has no matching entry: this run has "
                f"{len(items)} of them; the checkpoint belongs to another configuration"
            )


def _check_classes(classes, extensions: list, where: str) -> None:
    """Each saved extension state must go back to an extension of the class that saved it
    (checkpoints written before the classes were recorded have none to check)."""
    if not isinstance(classes, dict):
        raise ModelFileError(f"{where}: field state/extension_classes is not a group")
    for key, name in classes.items():
        if not isinstance(name, str):
            raise ModelFileError(
                f"{where}: field state/extension_classes/{text.escape(key[:20])} "
                "is not a class name"
            )
        if not (key.isascii() and key.isdigit() and len(key) < 10 and int(key) < len(extensions)):
            continue  # (a state with no extension to go to is refused by _check_indices)
        mine = type(extensions[int(key)]).__name__
        if name != mine:
            raise ModelFileError(
                f"{where}: extension {int(key) + 1} of the YAML is {mine}, but the checkpoint's "
                f"extension {int(key) + 1} was {text.escape(name[:100])}: an extension was "
                "removed or they were reordered; keep them all, in their order (new ones go "
                "at the end), or start over with --restart"
            )


def _generator_states(state: dict, names, where: str) -> dict:
    saved = _field(state, "rngs", where)
    missing = sorted(set(names) - set(saved))
    if missing:
        raise ModelFileError(
            f"{where}: no saved state for random generator(s) {', '.join(missing)}"
        )
    generators = {}
    for name in names:
        generator = np.random.default_rng()
        try:
            generator.bit_generator.state = json.loads(saved[name])
        except (TypeError, ValueError, KeyError, RecursionError, OverflowError) as exc:
            raise ModelFileError(
                f"{where}: field state/rngs/{name} is not a valid random generator state "
                f"({type(exc).__name__}: {exc})"
            ) from None
        generators[name] = generator
    return generators


@dataclass
class Checkpoint:
    """What :func:`read_checkpoint` read from a checkpoint file, checked but not yet applied."""

    path: str
    finished: bool
    epochs_seen: int
    resume_position: int
    config_yaml: str
    state: dict
    monitor: dict
    #: Parameter values by name (empty unless a model was given to :func:`read_checkpoint`).
    params: dict = field(default_factory=dict)

    def info(self) -> dict:
        """``{"finished", "epochs_seen", "config_yaml", "resume_position"}``."""
        return {
            "finished": self.finished,
            "epochs_seen": self.epochs_seen,
            "config_yaml": self.config_yaml,
            "resume_position": self.resume_position,
        }


def read_checkpoint(path, model=None) -> Checkpoint:
    """Read and check the checkpoint at ``path``: the only door from its bytes to objects.

    With ``model``, the stored parameters are read too, each checked against
    the shape of ``model``'s parameter of the same name before its data are
    read. Nothing is changed; :func:`restore_checkpoint` applies the result.
    """
    where = str(path)
    with reading(path, "checkpoint") as handle:
        state, epochs = _read_state(handle, where)
        config = read_text_attribute(handle, "config_yaml", where)
        params = {}
        if model is not None:
            if "params" not in handle:
                raise ModelFileError(f"{where}: damaged checkpoint: group 'params' is missing")
            params = read_params(handle["params"], all_params(model), where)
        monitor = read_tree(handle["monitor"], where)
    return Checkpoint(
        path=where,
        finished=state["finished"],
        epochs_seen=epochs,
        resume_position=int(state["algorithm"]["resume_position"]),
        config_yaml=config or "",
        state=state,
        monitor=monitor,
        params=params,
    )


def read_checkpoint_info(path) -> dict:
    """Return ``{"finished", "epochs_seen", "config_yaml", "resume_position"}`` of a checkpoint."""
    return read_checkpoint(path).info()


def restore_checkpoint(checkpoint: Checkpoint, train) -> dict:
    """Restore ``train`` (already set up from the same YAML) from a :class:`Checkpoint`.

    What can be checked against ``train`` is checked before anything is
    changed. Returns the saved state tree.
    """
    where, state = checkpoint.path, checkpoint.state
    params = all_params(train.model)
    missing = [p.name for p in params if p.name not in checkpoint.params]
    if missing:
        raise ValueError(
            f"the checkpoint was read without this model's parameters ({', '.join(missing)}); "
            "pass the model to read_checkpoint"
        )
    _check_position(state, train, where)
    _check_offsets(_field(state, "termination", where), checkpoint.epochs_seen, where)
    _check_classes(state.get("extension_classes", {}), train.extensions, where)
    _check_indices(_field(state, "extensions", where), train.extensions, where, "state/extensions")
    _check_indices(
        _field(state, "algorithm/update_callbacks", where),
        train.algorithm.update_callbacks,
        where,
        "state/algorithm/update_callbacks",
    )
    rngs = _shared_rngs(train)
    generators = _generator_states(state, rngs, where)
    restore_monitor(train.model, checkpoint.monitor, where)
    set_params(params, checkpoint.params)
    try:
        train.algorithm.load_state_dict(state["algorithm"])
        for key, sub in state["extensions"].items():
            train.extensions[int(key)].load_state_dict(sub)
        criterion = train.algorithm.termination_criterion
        if (
            isinstance(criterion, Stateful)
            and state.get("termination_class") == type(criterion).__name__
        ):
            criterion.load_state_dict(state["termination"])
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, OverflowError) as exc:
        raise ModelFileError(
            f"{where}: damaged checkpoint state ({type(exc).__name__}: {exc}); start over "
            "with --restart or use another checkpoint"
        ) from None
    for name, rng in rngs.items():
        rng.set_value(generators[name], borrow=True)
    return state


def load_checkpoint(path, train) -> dict:
    """:func:`read_checkpoint` then :func:`restore_checkpoint`: restore ``train`` from ``path``."""
    return restore_checkpoint(read_checkpoint(path, train.model), train)
