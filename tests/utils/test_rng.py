"""Explicit RNGs: fresh noise per call, reproducible per seed, updates found."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pylearn_vae.compile import function
from pylearn_vae.utils import constantX, floatX, sharedX, using_floatX
from pylearn_vae.utils.rng import SymbolicRNG, make_np_rng, rng_updates, shared_noise


@pytest.mark.compiles
def test_function_draws_fresh_noise_each_call():
    srng = SymbolicRNG(7)
    f = function([], srng.normal(size=(4,)))
    a, b = f(), f()
    assert not np.allclose(a, b)
    assert a.dtype == np.dtype(floatX())


@pytest.mark.compiles
def test_same_seed_same_noise_and_different_seed_different_noise():
    def draws(seed):
        srng = SymbolicRNG(seed)
        f = function([], [srng.normal(size=(3,)), srng.uniform(size=(3,))])
        return [f() for _ in range(2)]

    a, b, c = draws(11), draws(11), draws(12)
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)
    assert not np.allclose(a[0][0], c[0][0])


@pytest.mark.compiles
def test_two_draws_in_one_graph_are_independent():
    srng = SymbolicRNG(3)
    f = function([], [srng.normal(size=(50,)), srng.normal(size=(50,))])
    x, y = f()
    assert not np.allclose(x, y)


@pytest.mark.compiles
def test_uniform_range():
    f = function([], SymbolicRNG(1).uniform(size=(1000,), low=2.0, high=3.0))
    u = f()
    assert u.min() >= 2.0 and u.max() < 3.0


@pytest.mark.compiles
def test_rng_updates_finds_every_draw_and_plain_function_repeats():
    srng = SymbolicRNG(5)
    x = srng.normal(size=(2,)) + srng.uniform(size=(2,))
    assert len(rng_updates(x)) == 3  # a normal draw is made from two uniform draws
    # Without the updates the same noise comes back: the reason for the helper.
    g = pytensor.function([], x)
    np.testing.assert_array_equal(g(), g())


def test_conflicting_explicit_update_is_refused():
    srng = SymbolicRNG(5)
    x = srng.uniform(size=(2,))
    (rng,) = rng_updates(x)
    with pytest.raises(ValueError, match="random state"):
        function([], x, updates={rng: rng})


def test_make_np_rng_and_seed_validation():
    a = make_np_rng(None, default_seed=[1, 2]).uniform(size=3)
    b = make_np_rng([1, 2]).uniform(size=3)
    np.testing.assert_array_equal(a, b)
    existing = np.random.RandomState(0)
    assert make_np_rng(existing) is existing
    with pytest.raises(ValueError, match="non-negative"):
        SymbolicRNG(-1)
    with pytest.raises(ValueError, match="no method"):
        make_np_rng(0, which_method="not_a_method")


def test_floatx_helpers(float64_graphs):
    assert sharedX([1, 2]).get_value().dtype == np.dtype(floatX())
    assert constantX(0.1).dtype == np.dtype(floatX())
    with using_floatX("float64"):
        assert floatX() == "float64"
        assert sharedX([1.0]).get_value().dtype == np.float64
    assert floatX() == "float32"
    with pytest.raises(ValueError, match="floatX must be one of"):
        with using_floatX("float16"):
            pass


@pytest.mark.compiles
def test_normal_draws_have_normal_moments():
    f = function([], SymbolicRNG(8).normal(size=(200_000,), avg=1.5, std=2.0))
    x = f().astype("float64")
    z = (x - 1.5) / 2.0
    # Standard errors: mean 1/sqrt(n) = 0.0022, variance sqrt(2/n) = 0.0032.
    assert abs(z.mean()) < 0.01 and abs(z.var() - 1.0) < 0.015
    assert abs((z**3).mean()) < 0.03 and abs((z**4).mean() - 3.0) < 0.1
    assert abs((np.abs(z) < 1.0).mean() - 0.682689) < 0.005


@pytest.mark.compiles
def test_normal_uses_both_box_muller_values_and_any_size():
    srng = SymbolicRNG(4)
    n = pt.iscalar("n")
    with shared_noise() as noise:  # to get at the uniform draws behind the normal one
        z = srng.normal(size=(n, 6))
        noise.restart()
        u1, u2 = srng.uniform(size=(n, 3)), srng.uniform(size=(n, 3))
    odd = srng.normal(size=(n, 5))
    vector_size = srng.normal(size=pt.stack([n, n]))
    single = srng.normal(size=())
    z, u1, u2, odd, vector_size, single = function([n], [z, u1, u2, odd, vector_size, single])(4)
    radius = np.sqrt(-2 * np.log1p(-u1.astype("float64")))
    angle = 2 * np.pi * u2.astype("float64")
    np.testing.assert_allclose(z[:, :3], radius * np.cos(angle), atol=2e-6)
    np.testing.assert_allclose(z[:, 3:], radius * np.sin(angle), atol=2e-6)
    assert odd.shape == (4, 5) and vector_size.shape == (4, 4) and single.shape == ()
    assert np.isfinite(odd).all() and np.isfinite(vector_size).all()


@pytest.mark.compiles
def test_shared_noise_replays_draws_for_the_next_expressions_only():
    srng, other = SymbolicRNG(8), SymbolicRNG(9)
    n = pt.iscalar("n")
    with shared_noise() as noise:
        first = srng.normal(size=(n, 4))  # from two uniform draws of size (n, 2)
        noise.restart()
        again = srng.normal(size=(n, 4)) * 2  # same draws, different use
        noise.restart()
        # Same first draw, then a different size: fresh from there on.
        diverged = [srng.uniform(size=(n, 2)), srng.uniform(size=(n, 5))]
        noise.restart()
        from_other_source = other.normal(size=(n, 4))
    outside = srng.normal(size=(n, 4))
    f = function([n], [first, again, *diverged, from_other_source, outside])
    a, b, u1, u2, o, out = f(6)
    np.testing.assert_allclose(b, 2 * a, rtol=1e-6)
    # u1 is the first uniform draw (the radii) behind ``first``.
    assert u1.shape == (6, 2) and u2.shape == (6, 5)
    radius_from_u1 = np.sqrt(-2 * np.log1p(-u1.astype("float64")))
    np.testing.assert_allclose(np.hypot(a[:, :2], a[:, 2:]), radius_from_u1, rtol=1e-5)
    assert not np.allclose(o, a) and not np.allclose(out, a)
    # Fresh draws each call still (the replayed draws keep their updates).
    assert not np.allclose(f(6)[0], a)
    # Within one expression two draws of one size stay independent.
    with shared_noise():
        x, y = srng.normal(size=(50,)), srng.normal(size=(50,))
    x, y = function([], [x, y])()
    assert not np.allclose(x, y)
