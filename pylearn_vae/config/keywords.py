"""Pylearn2 keywords that pylearn_vae does not implement, or spells differently.

One table, :data:`REFUSED`, lists for each class (or method) the Pylearn2
keywords it does not implement, and it drives everything that deals with them:

* keywords still in the signature (so that a Pylearn2 call, positional or by
  keyword, keeps its meaning) are accepted at their Pylearn2 default and
  refused otherwise by the :func:`pylearn2_keywords` decorator on the
  constructor, with :class:`~pylearn_vae.errors.UnsupportedOptionError`
  (the YAML loader points at the keyword's line);
* keywords of older Pylearn2 versions, not in the signature, give the YAML
  loader's "unexpected keyword" error its advice (:func:`advice_for`).

:data:`RENAMED` lists keywords kept under another name: the loader accepts
the old spelling with a notice and ``scripts/migrate_yaml.py`` rewrites it.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

from pylearn_vae.errors import UnsupportedOptionError

__all__ = ["REFUSED", "RENAMED", "Refused", "advice_for", "pylearn2_keywords", "renamed_for"]

_NOT_IMPLEMENTED = (
    "accepted for Pylearn2 compatibility but not implemented by pylearn_vae; "
    "remove them (see docs/differences.md)"
)


@dataclass(frozen=True)
class Refused:
    """How pylearn_vae treats one Pylearn2 keyword it does not implement.

    ``in_signature``: the constructor still takes the keyword and accepts its
    Pylearn2 default (the signature's default); otherwise it is a keyword of
    an older Pylearn2 that only the YAML loader meets. ``advice`` says what to
    do instead.
    """

    in_signature: bool = True
    advice: str = _NOT_IMPLEMENTED


def _older(advice: str) -> Refused:
    return Refused(in_signature=False, advice=advice)


_LINEAR = ("sparse_init", "sparse_stdev", "include_prob", "mask_weights", "copy_input")

#: Dotted path of a class (or ``Class.method``) -> {keyword: Refused}.
REFUSED: dict[str, dict[str, Refused]] = {
    "pylearn_vae.models.layers.linear.Linear": {
        **dict.fromkeys(_LINEAR, Refused()),
        "use_abs_loss": Refused(),
    },
    "pylearn_vae.models.layers.conv.ConvElemwise": dict.fromkeys(
        ("sparse_init", "include_prob", "detector_normalization", "output_normalization"),
        Refused(),
    ),
    "pylearn_vae.models.layers.deconv.Deconv": dict.fromkeys(
        ("fix_kernel_shape", "partial_sum"), Refused()
    ),
    "pylearn_vae.models.layers.composite.CompositeLayer": {"inputs_to_layers": Refused()},
    "pylearn_vae.models.mlp.MLP": {
        "dropout_include_probs": _older("dropout is not provided by pylearn_vae"),
    },
    "pylearn_vae.training_algorithms.sgd.SGD": {
        **dict.fromkeys(
            ("monitoring_batches", "batches_per_iter", "monitoring_costs", "set_batch_size"),
            Refused(),
        ),
        "init_momentum": _older(
            "momentum moved to the learning rule: learning_rule: "
            "!obj:pylearn_vae.training_algorithms.learning_rule.Momentum {init_momentum: ...}"
        ),
        "learning_rule_params": _older("give the learning rule object its own keywords instead"),
    },
    "pylearn_vae.gui.patch_viewer.PatchViewer.add_patch": {"activation": Refused()},
}

#: Dotted class path -> {old keyword: new keyword}: Pylearn2 keywords whose
#: meaning pylearn_vae keeps under another name (none today).
RENAMED: dict[str, dict[str, str]] = {}


def _path(obj) -> str:
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"


def _paths(callable_obj) -> list[str]:
    """The dotted paths a callable answers to: its own and, for a class, its bases'."""
    if inspect.isclass(callable_obj):
        return [_path(c) for c in callable_obj.__mro__ if c is not object]
    return [_path(callable_obj)]


def advice_for(callable_obj, keyword: str, extra_paths=()) -> str | None:
    """What to do instead of ``keyword``, if the table knows it for this callable."""
    for path in [*_paths(callable_obj), *extra_paths]:
        refused = REFUSED.get(path, {}).get(keyword)
        if refused is not None:
            return refused.advice
    return None


def renamed_for(callable_obj, extra_paths=()) -> dict[str, str]:
    """``{old: new}`` keyword renames that apply to this callable."""
    renames: dict[str, str] = {}
    for path in reversed([*_paths(callable_obj), *extra_paths]):
        renames.update(RENAMED.get(path, {}))
    return renames


def _at_default(value, default) -> bool:
    if value is default:
        return True
    try:
        return bool(value == default)
    except (TypeError, ValueError):  # an array compared with a scalar
        return False


def pylearn2_keywords(function):
    """Decorate a constructor (or method) whose refused keywords :data:`REFUSED` lists.

    The call goes through when each such keyword is at its signature's
    default (Pylearn2's); otherwise :class:`UnsupportedOptionError` names
    every keyword that is not, and the owner (the class, and the layer's
    name when it has one).
    """
    path = _path(function).removesuffix(".__init__")
    names = [k for k, rule in REFUSED.get(path, {}).items() if rule.in_signature]
    signature = inspect.signature(function)
    missing = [k for k in names if k not in signature.parameters]
    if not names:
        raise LookupError(f"{path}: REFUSED lists no keywords in its signature to check")
    if missing:
        raise LookupError(f"{path}: REFUSED lists {missing}, which its signature does not have")
    defaults = {k: signature.parameters[k].default for k in names}

    method = "" if function.__name__ == "__init__" else f".{function.__name__}"

    @functools.wraps(function)
    def checked(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bad = [
            k
            for k in names
            if k in bound.arguments and not _at_default(bound.arguments[k], defaults[k])
        ]
        if bad:
            owner = type(bound.arguments["self"]).__name__ + method
            layer_name = bound.arguments.get("layer_name")
            if layer_name is not None:
                owner += f" {layer_name!r}"
            raise UnsupportedOptionError(
                f"{owner}: option(s) {', '.join(repr(b) for b in bad)} are {_NOT_IMPLEMENTED}",
                bad,
            )
        return function(*args, **kwargs)

    return checked
