"""Fixtures for sweep tests: the real data mirror (from tests/cli) and a tiny base YAML."""

from pathlib import Path

from tests.cli.conftest import mirror, mnist_root  # noqa: F401  (shared session fixtures)

REPO = Path(__file__).resolve().parents[2]

#: A 784-16-4 VAE on 1,000 training and 300 validation digits (an epoch is 10 minibatches).
BASE_YAML = """\
# the base training YAML of the sweep tests
!obj:pylearn_vae.train.Train {
    dataset: &train !obj:pylearn_vae.datasets.binarized_mnist.BinarizedMNIST {
        which_set: 'train', stop: 1000 },
    model: !obj:pylearn_vae.models.vae.VAE {
        nvis: 784, nhid: 4, seed: 5,
        prior: !obj:pylearn_vae.models.vae.prior.DiagonalGaussianPrior {},
        conditional: !obj:pylearn_vae.models.vae.conditional.BernoulliVector {
            name: 'conditional',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.RectifiedLinear {
                    layer_name: 'h', dim: 16, irange: 0.05 } ] } },
        posterior: !obj:pylearn_vae.models.vae.conditional.DiagonalGaussian {
            name: 'posterior',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.RectifiedLinear {
                    layer_name: 'h', dim: 16, irange: 0.05 } ] } },
    },
    algorithm: !obj:pylearn_vae.training_algorithms.sgd.SGD {
        batch_size: 100,
        learning_rate: 0.005,
        learning_rule: !obj:pylearn_vae.training_algorithms.learning_rule.Momentum {
            init_momentum: 0.5 },
        monitoring_dataset: {
            'valid': !obj:pylearn_vae.datasets.binarized_mnist.BinarizedMNIST {
                which_set: 'valid', stop: 300 } },
        cost: !obj:pylearn_vae.costs.vae.VAECriterion {},
        termination_criterion: !obj:pylearn_vae.termination_criteria.EpochCounter {
            max_epochs: 50 },
    },
    save_path: '${PYLEARN2_TRAIN_FILE_FULL_STEM}.pkl',
}
"""


def write_sweep(folder: Path, body: str) -> Path:
    """A base YAML and a sweep file (``base: base.yaml`` plus ``body``) in ``folder``."""
    (folder / "base.yaml").write_text(BASE_YAML)
    path = folder / "sweep.yaml"
    path.write_text("base: base.yaml\n" + body)
    return path
