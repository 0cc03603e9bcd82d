"""Pylearn2 dotted names, and where each one lives in pylearn_vae.

YAML files written for Pylearn2 name classes such as
``pylearn2.models.vae.VAE``. They resolve through :data:`PYLEARN2_NAMES`, an
explicit table (not a string replacement), so a class that moved still
resolves and one that pylearn_vae does not provide gives an error that says
so and what to use instead. ``docs/migrating.md`` shows the same table.
"""

from __future__ import annotations

import warnings

from pylearn_vae.config import keywords
from pylearn_vae.config.errors import ConfigError
from pylearn_vae.errors import LegacyNameWarning

__all__ = [
    "PYLEARN2_NAMES",
    "UNSUPPORTED",
    "LegacyNameWarning",
    "LegacyNameMapper",
    "map_name",
    "hint_for",
    "keyword_advice",
    "renamed_keywords_for",
]


def _same(*names: str) -> dict[str, str]:
    return {name: "pylearn_vae" + name[len("pylearn2") :] for name in names}


#: Pylearn2 name -> pylearn_vae name, for everything pylearn_vae ports.
PYLEARN2_NAMES: dict[str, str] = {
    **_same(
        "pylearn2.train.Train",
        "pylearn2.datasets.binarized_mnist.BinarizedMNIST",
        "pylearn2.datasets.dense_design_matrix.DenseDesignMatrix",
        "pylearn2.models.vae.VAE",
        "pylearn2.models.vae.prior.Prior",
        "pylearn2.models.vae.prior.DiagonalGaussianPrior",
        "pylearn2.models.vae.conditional.Conditional",
        "pylearn2.models.vae.conditional.BernoulliVector",
        "pylearn2.models.vae.conditional.DiagonalGaussian",
        "pylearn2.models.vae.kl.KLIntegrator",
        "pylearn2.models.vae.kl.DiagonalGaussianPriorPosteriorKL",
        "pylearn2.models.mlp.MLP",
        "pylearn2.models.mlp.Linear",
        "pylearn2.models.mlp.RectifiedLinear",
        "pylearn2.models.mlp.Sigmoid",
        "pylearn2.models.mlp.Tanh",
        "pylearn2.models.mlp.Softplus",
        "pylearn2.models.mlp.CompositeLayer",
        "pylearn2.models.mlp.SpaceConverter",
        "pylearn2.models.mlp.ConvElemwise",
        "pylearn2.models.mlp.ConvRectifiedLinear",
        "pylearn2.models.mlp.IdentityConvNonlinearity",
        "pylearn2.models.mlp.RectifierConvNonlinearity",
        "pylearn2.models.mlp.SigmoidConvNonlinearity",
        "pylearn2.models.mlp.TanhConvNonlinearity",
        "pylearn2.training_algorithms.sgd.SGD",
        "pylearn2.training_algorithms.sgd.ExponentialDecay",
        "pylearn2.training_algorithms.sgd.LinearDecayOverEpoch",
        "pylearn2.training_algorithms.sgd.PolyakAveraging",
        "pylearn2.training_algorithms.learning_rule.Momentum",
        "pylearn2.training_algorithms.learning_rule.MomentumAdjustor",
        "pylearn2.training_algorithms.learning_rule.RMSProp",
        "pylearn2.training_algorithms.learning_rule.Adam",
        "pylearn2.termination_criteria.EpochCounter",
        "pylearn2.termination_criteria.MonitorBased",
        "pylearn2.termination_criteria.And",
        "pylearn2.termination_criteria.Or",
        "pylearn2.train_extensions.best_params.MonitorBasedSaveBest",
        "pylearn2.costs.vae.VAECriterion",
        "pylearn2.costs.vae.ImportanceSamplingCriterion",
        "pylearn2.space.VectorSpace",
        "pylearn2.space.CompositeSpace",
        "pylearn2.space.Conv2DSpace",
        "pylearn2.gui.patch_viewer.PatchViewer",
        "pylearn2.testing.datasets.random_dense_design_matrix",
        "pylearn2.utils.rng.make_np_rng",
    ),
    # Relocated in Pylearn2's own history; both spellings resolve.
    "pylearn2.training_algorithms.sgd.MomentumAdjustor": "pylearn_vae.training_algorithms.learning_rule.MomentumAdjustor",
}

#: Pylearn2 names that are deliberately not provided, with advice.
UNSUPPORTED: dict[str, str] = {
    "pylearn2.datasets.mnist.MNIST": "use pylearn_vae.datasets.binarized_mnist.BinarizedMNIST "
    "(the VAE framework trains on binarized MNIST)",
    "pylearn2.models.mlp.Softmax": "pylearn_vae ports the VAE framework only; classifiers are out of scope",
    "pylearn2.costs.mlp.dropout.Dropout": "dropout is not provided",
    "pylearn2.training_algorithms.bgd.BGD": "use pylearn_vae.training_algorithms.sgd.SGD",
    "pylearn2.train_extensions.window_flip.WindowAndFlip": "image augmentation is not provided",
}


def _class_path(obj) -> str:
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"


def _names_of(callable_obj, yaml_name: str | None) -> set[str]:
    """The dotted names a callable is known by: where it is defined, and the
    (mapped) name the YAML file used for it."""
    names = {_class_path(callable_obj)}
    if yaml_name:
        names.add(map_name(yaml_name) or yaml_name)
    return names


def renamed_keywords_for(callable_obj, yaml_name: str | None = None) -> dict[str, str]:
    """``{old: new}`` keyword renames that apply to ``callable_obj`` (from :data:`keywords.RENAMED`)."""
    return keywords.renamed_for(callable_obj, _names_of(callable_obj, yaml_name))


def keyword_advice(callable_obj, keyword: str, yaml_name: str | None = None) -> str | None:
    """Advice for a keyword ``callable_obj`` does not accept (from :data:`keywords.REFUSED`)."""
    return keywords.advice_for(callable_obj, keyword, _names_of(callable_obj, yaml_name))


def map_name(name: str) -> str | None:
    """Return the pylearn_vae name for a Pylearn2 ``name``, or None."""
    return PYLEARN2_NAMES.get(name)


def hint_for(name: str) -> str:
    """Advice for a Pylearn2 name that cannot be resolved (with a leading '; ')."""
    if name in UNSUPPORTED:
        return f"; {name} is not provided by pylearn_vae: {UNSUPPORTED[name]}"
    return (
        f"; {name} is not among the Pylearn2 classes pylearn_vae ports "
        "(see docs/migrating.md for the full table)"
    )


class LegacyNameMapper:
    """Maps Pylearn2 names during one load and reports them once."""

    def __init__(self) -> None:
        self.mapped: dict[str, str] = {}

    def note_keyword(self, owner: str, old: str, new: str) -> None:
        self.mapped[f"{owner} keyword {old!r}"] = repr(new)

    def map(self, name: str, mark=None) -> str:
        if not name.startswith("pylearn2."):
            return name
        new = map_name(name)
        if new is None:
            raise ConfigError(
                f"unsupported Pylearn2 name {name!r}{hint_for(name)}", str(mark) if mark else None
            )
        self.mapped[name] = new
        return new

    def report(self) -> None:
        if not self.mapped:
            return
        lines = "\n".join(f"  {old} -> {new}" for old, new in sorted(self.mapped.items()))
        warnings.warn(
            f"this configuration uses Pylearn2 names, mapped to pylearn_vae:\n{lines}\n"
            "Run scripts/migrate_yaml.py on the file to rewrite them once.",
            LegacyNameWarning,
            stacklevel=3,
        )
