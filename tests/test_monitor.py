"""Monitor channel values over a whole set equal a NumPy computation."""

import pickle

import numpy as np
import pytest

from pylearn_vae.costs.vae import VAECriterion
from pylearn_vae.datasets import DenseDesignMatrix
from pylearn_vae.monitor import Monitor, _combine
from tests.helpers.models import binary_data, make_vae


def _numpy_posterior(vae, x):
    values = {p.name: p.get_value().astype("float64") for p in vae.get_params()}
    h = np.maximum(x @ values["posterior_h_e_1_W"] + values["posterior_h_e_1_b"], 0)
    mu = h @ values["posterior_mu_W"] + values["posterior_mu_b"]
    log_sigma = h @ values["posterior_log_sigma_W"] + values["posterior_log_sigma_b"]
    return mu, log_sigma


@pytest.fixture(scope="module")
def monitored():
    vae = make_vae(irange=0.8, seed=21)
    rng = np.random.default_rng(0)
    for p in vae.get_prior_params():  # a non-standard prior, to exercise the KL
        p.set_value(rng.normal(0, 0.3, p.get_value().shape).astype("float32"))
    x = binary_data(23, 12, seed=5)
    monitor = Monitor.get_monitor(vae)
    monitor.setup(
        {"valid": DenseDesignMatrix(X=x)},
        VAECriterion(1),
        batch_size=10,
        extra=lambda: {"learning_rate": 0.5},
    )
    return vae, x, monitor


@pytest.mark.compiles
def test_channels_are_exact_over_the_whole_set(monitored):
    vae, x, monitor = monitored
    values = monitor()
    mu, log_sigma = _numpy_posterior(vae, x.astype("float64"))
    pmu, pls = (p.get_value().astype("float64") for p in vae.get_prior_params())
    kl = (
        pls - log_sigma + 0.5 * (np.exp(2 * log_sigma) + (mu - pmu) ** 2) / np.exp(2 * pls) - 0.5
    ).sum(1)
    sigma = np.exp(log_sigma)
    np.testing.assert_allclose(values["valid_kl_divergence_term"], kl.mean(), rtol=1e-5)
    np.testing.assert_allclose(values["valid_posterior_sigma_min"], sigma.min(), rtol=1e-5)
    np.testing.assert_allclose(values["valid_posterior_sigma_max"], sigma.max(), rtol=1e-5)
    np.testing.assert_allclose(values["valid_posterior_sigma_mean"], sigma.mean(), rtol=1e-5)
    np.testing.assert_allclose(values["valid_posterior_sigma_std"], sigma.std(), rtol=1e-4)
    assert values["learning_rate"] == 0.5 and values["epochs_seen"] == 0
    # All channels of a batch see the same noise, so the terms add up exactly.
    np.testing.assert_allclose(
        values["valid_objective"],
        values["valid_kl_divergence_term"] + values["valid_expectation_term"],
        rtol=1e-5,
    )
    assert values["valid_objective"] > values["valid_kl_divergence_term"] > 0


@pytest.mark.compiles
def test_one_forward_pass_serves_every_channel(monitored):
    vae, _, monitor = monitored
    (fn,) = monitor._functions.values()
    # One matrix product per weight matrix: the encoder and the decoder run
    # once per batch, not once per channel.
    products = [
        node
        for node in fn.maker.fgraph.apply_nodes
        if any(kind in type(node.op).__name__ for kind in ("Dot", "Gemm", "Gemv", "Ger"))
    ]
    assert len(products) == sum(p.ndim == 2 for p in vae.get_params())


@pytest.mark.compiles
def test_records_accumulate_and_pickle_without_functions(monitored):
    vae, _, monitor = monitored
    before = len(monitor.channels["valid_objective"].val_record)
    monitor.report_batch(10)
    monitor.report_epoch(1.5)
    monitor()
    channel = monitor.channels["valid_objective"]
    assert len(channel.val_record) == before + 1
    assert channel.epoch_record[-1] == 1 and channel.example_record[-1] == 10
    assert monitor.channels["seconds_per_epoch"].val_record[-1] == 1.5
    clone = pickle.loads(pickle.dumps(vae))
    assert clone.monitor.channels["valid_objective"].val_record == channel.val_record
    assert clone.monitor._functions == {}
    assert "Epochs seen: 1" in monitor.format_report()


@pytest.mark.compiles
def test_state_without_the_total_seconds_field_loads_and_a_bad_one_is_named(monitored):
    # Files written before total_seconds_last_epoch existed have no such field.
    _, _, monitor = monitored
    monitor.report_epoch_total(2.5)
    state = monitor.state_dict()
    assert state["last_total_seconds"] == 2.5
    del state["last_total_seconds"]
    monitor.load_state_dict(state)
    assert monitor._last_total_seconds == 0.0
    state["last_total_seconds"] = "soon"
    with pytest.raises(ValueError, match="'last_total_seconds' is 'soon'"):
        monitor.load_state_dict(state)


def test_combine_weights_the_partial_batch():
    # batches of 10, 10 and 3 examples
    sizes = [10, 10, 3]
    data = np.random.default_rng(1).normal(size=23)
    chunks = [data[:10], data[10:20], data[20:]]
    batch_values = [[c.mean(), c.min(), c.max(), c.mean(), c.std()] for c in chunks]
    names = ["objective", "a_min", "a_max", "s_mean", "s_std"]
    out = _combine(names, batch_values, sizes)
    assert out["objective"] == pytest.approx(data.mean())
    assert out["a_min"] == pytest.approx(data.min()) and out["a_max"] == pytest.approx(data.max())
    assert out["s_std"] == pytest.approx(data.std())


def test_unknown_channel_is_named():
    vae = make_vae()
    monitor = Monitor.get_monitor(vae)
    with pytest.raises(KeyError, match="no monitor channel named 'nope'"):
        monitor.channel_value("nope")
