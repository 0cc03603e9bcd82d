"""KL integrator registry: lookup by (prior, posterior) class, most specific wins."""

import pytest

from pylearn_vae.models.mlp import MLP, Tanh
from pylearn_vae.models.vae.conditional import BernoulliVector, DiagonalGaussian
from pylearn_vae.models.vae.kl import (
    DiagonalGaussianPriorPosteriorKL,
    KLIntegrator,
    find_integrator_for,
    register_integrator,
    registered_integrators,
)
from pylearn_vae.models.vae.prior import DiagonalGaussianPrior, Prior
from tests.helpers.models import make_vae


def _posterior(cls=DiagonalGaussian):
    return cls(name="posterior", mlp=MLP(layers=[Tanh(layer_name="h", dim=3, irange=0.1)]))


class SpecialPrior(DiagonalGaussianPrior):
    pass


class SpecialPosterior(DiagonalGaussian):
    pass


class SpecialPriorKL(DiagonalGaussianPriorPosteriorKL):
    prior_class = SpecialPrior


class UserPrior(Prior):
    pass


class UserKL(KLIntegrator, register=False):
    prior_class = UserPrior
    posterior_class = DiagonalGaussian


def test_builtin_lookup_and_auto_selection():
    assert isinstance(
        find_integrator_for(DiagonalGaussianPrior(), _posterior()), DiagonalGaussianPriorPosteriorKL
    )
    assert find_integrator_for(DiagonalGaussianPrior(), _posterior(BernoulliVector)) is None
    assert type(make_vae().kl_integrator) is DiagonalGaussianPriorPosteriorKL


def test_most_specific_match_wins_and_subclasses_still_match():
    assert type(find_integrator_for(SpecialPrior(), _posterior())) is SpecialPriorKL
    assert (
        type(find_integrator_for(DiagonalGaussianPrior(), _posterior()))
        is DiagonalGaussianPriorPosteriorKL
    )
    # A posterior subclass with no integrator of its own uses its parent's.
    assert type(find_integrator_for(SpecialPrior(), _posterior(SpecialPosterior))) is SpecialPriorKL


def test_user_integrator_found_after_explicit_registration():
    assert find_integrator_for(UserPrior(), _posterior()) is None
    register_integrator(UserKL)
    assert isinstance(find_integrator_for(UserPrior(), _posterior()), UserKL)
    assert registered_integrators()[(UserPrior, DiagonalGaussian)] is UserKL


def test_register_refuses_bad_classes():
    with pytest.raises(TypeError, match="not a KLIntegrator subclass"):
        register_integrator(int)

    class Broken(KLIntegrator, register=False):
        prior_class = int
        posterior_class = DiagonalGaussian

    with pytest.raises(TypeError, match="prior_class must be a Prior subclass"):
        register_integrator(Broken)


def test_integrator_validates_its_arguments():
    with pytest.raises(
        ValueError, match="expects a prior of class DiagonalGaussianPrior, got UserPrior"
    ):
        DiagonalGaussianPriorPosteriorKL().kl_divergence((), (), UserPrior(), _posterior())
