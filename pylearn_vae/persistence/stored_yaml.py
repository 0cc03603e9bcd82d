"""The YAML stored in an ``.h5`` model file: the only door through which it becomes objects.

A model file's ``model_yaml`` attribute describes the model's classes and
sizes. :func:`build_model` builds it with the restricted loader of
:mod:`pylearn_vae.config.yaml_parse`: only classes defined in
``MODEL_PACKAGES``, named exactly as ``module.Class``; no ``!pkl:``, no
``!import``, ``${VAR}`` left as written. Sizes the YAML asks for must be
sizes of the parameters stored next to it, and are checked before anything
is built (building allocates the parameters).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from pylearn_vae.config import yaml_parse
from pylearn_vae.persistence.checks import SizeBound
from pylearn_vae.utils.files import ModelFileError
from pylearn_vae.utils.limits import memory_budget

__all__ = ["MODEL_PACKAGES", "build_model", "out_of_memory"]

#: Address space a model's build may map beyond 32 bytes per stored number
#: (its objects; a new malloc arena when built on a thread reserves 64 MiB).
BUILD_ROOM = 192 << 20

#: Where the classes named by a file's stored YAML may come from.
MODEL_PACKAGES = ("pylearn_vae.models", "pylearn_vae.space")

# Integer keywords that allocate nothing (a seed may be any integer). Every
# other integer in the stored YAML, whatever its keyword (nvis, dim,
# num_components, num_pseudo_inputs, num_flows, a kernel shape's entries, a
# keyword a future component adds), is taken as a size and must be one the
# stored parameters allow: nothing is trusted by name.
_NOT_SIZES = frozenset({"seed"})


def _integers(value):
    """The integers in a keyword's value (itself, or inside lists and tuples)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            if not isinstance(item, yaml_parse.ObjectProxy | dict):
                yield from _integers(item)


def _check_sizes(parsed, bound: SizeBound, where: str) -> None:
    """Refuse integers in the parsed YAML that the stored parameters do not allow."""
    stack = [parsed]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml_parse.ObjectProxy):
            for key, value in node.kwargs.items():
                if key in _NOT_SIZES:
                    continue
                for number in _integers(value):
                    if not bound.allows(number):
                        raise ModelFileError(
                            f"{where}: model_yaml asks for {key}: {number} at "
                            f"{node.key_marks.get(key, node.mark)}, but no parameter stored in "
                            "the file has that size; refusing to build the model"
                        )
            stack.extend(node.kwargs.values())
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``MemoryError`` or was raised while handling one.

    The YAML loader wraps what a constructor raises in a
    :class:`~pylearn_vae.config.yaml_parse.ConfigError` (``raise ... from``),
    perhaps several times over for nested objects; the chain of causes and
    contexts tells what happened whatever the messages say (a message may
    mention ``MemoryError`` without one having happened).
    """
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, MemoryError):
            return True
        pending += [current.__cause__, current.__context__]
    return False


def build_model(text: str, where: str, stored_shapes: Iterable[tuple[int, ...]]):
    """Build the model that ``text`` (the ``model_yaml`` of the file ``where``) describes.

    ``stored_shapes`` are the shapes of the parameters stored in the file.
    Raises :class:`ModelFileError` for anything the module doc refuses, and
    when the result is not a model (has no ``get_params``).
    """
    source = f"{where}:model_yaml"
    stored_shapes = [tuple(shape) for shape in stored_shapes]
    bound = SizeBound(stored_shapes)
    # Building allocates the model's parameters, which must then match the
    # stored ones: a few times what the file stores (as float64), plus room
    # for the objects themselves, bounds it whatever the sizes say.
    budget = BUILD_ROOM + 4 * 8 * sum(math.prod(shape) for shape in stored_shapes)
    try:
        parsed = yaml_parse.load(text, restrict_to=MODEL_PACKAGES, source=source, instantiate=False)
        _check_sizes(parsed, bound, where)
        with memory_budget(budget):
            model = yaml_parse.instantiate(parsed, restrict_to=MODEL_PACKAGES)
    except (yaml_parse.ConfigError, MemoryError) as exc:
        if out_of_memory(exc):
            raise ModelFileError(
                f"{where}: building the model its YAML describes needs more than the "
                f"{budget:,} bytes its stored parameters justify; refusing it"
            ) from None
        raise ModelFileError(f"{where}: cannot rebuild the model: {exc}") from None
    if not callable(getattr(model, "get_params", None)):
        raise ModelFileError(f"{where}: model_yaml describes a {type(model).__name__}, not a model")
    return model
