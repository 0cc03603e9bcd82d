"""Training and model YAML the tests share, and the sweep tests' files."""

from pathlib import Path

#: A small VAE (784-64-8) trained for 3 epochs on 3,000 binarized MNIST digits,
#: saved to ``'PATH'`` (the command-line tests' model).
SMALL_MNIST_YAML = """\
!obj:pylearn_vae.train.Train {
    dataset: &train !obj:pylearn_vae.datasets.binarized_mnist.BinarizedMNIST { which_set: 'train', stop: 3000 },
    model: !obj:pylearn_vae.models.vae.VAE {
        nvis: 784, nhid: 8, seed: 5,
        prior: !obj:pylearn_vae.models.vae.prior.DiagonalGaussianPrior {},
        conditional: !obj:pylearn_vae.models.vae.conditional.BernoulliVector {
            name: 'conditional',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.RectifiedLinear { layer_name: 'h', dim: 64, irange: 0.05 } ] } },
        posterior: !obj:pylearn_vae.models.vae.conditional.DiagonalGaussian {
            name: 'posterior',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.RectifiedLinear { layer_name: 'h', dim: 64, irange: 0.05 } ] } },
    },
    algorithm: !obj:pylearn_vae.training_algorithms.sgd.SGD {
        batch_size: 100, learning_rate: 0.005,
        learning_rule: !obj:pylearn_vae.training_algorithms.learning_rule.Momentum { init_momentum: 0.5 },
        monitoring_dataset: { 'valid': !obj:pylearn_vae.datasets.binarized_mnist.BinarizedMNIST { which_set: 'valid', stop: 500 } },
        cost: !obj:pylearn_vae.costs.vae.VAECriterion {},
        termination_criterion: !obj:pylearn_vae.termination_criteria.EpochCounter { max_epochs: 3 },
    },
    save_path: 'PATH',
}
"""

#: A tiny VAE (12-5-3) as a model YAML (the crafted-file tests start from it).
MODEL_YAML = """\
!obj:pylearn_vae.models.vae.VAE {
    nvis: 12, nhid: 3, seed: 1,
    prior: !obj:pylearn_vae.models.vae.prior.DiagonalGaussianPrior {},
    conditional: !obj:pylearn_vae.models.vae.conditional.BernoulliVector {
        name: 'conditional',
        mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
            !obj:pylearn_vae.models.mlp.RectifiedLinear { layer_name: 'h', dim: 5, irange: 0.1 } ] } },
    posterior: !obj:pylearn_vae.models.vae.conditional.DiagonalGaussian {
        name: 'posterior',
        mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
            !obj:pylearn_vae.models.mlp.RectifiedLinear { layer_name: 'h', dim: 5, irange: 0.1 } ] } },
}
"""

#: The small MNIST VAE, made smaller (784-16-8; 1,000 training and 300
#: validation digits, an epoch is 10 minibatches), saving next to its YAML.
BASE_YAML = "# the base training YAML of the sweep tests\n" + (
    SMALL_MNIST_YAML.replace("stop: 3000", "stop: 1000")
    .replace("stop: 500", "stop: 300")
    .replace("dim: 64", "dim: 16")
    .replace("'PATH'", "'${PYLEARN2_TRAIN_FILE_FULL_STEM}.pkl'")
)
assert BASE_YAML.count("dim: 16") == 2 and "stop: 300" in BASE_YAML and "PATH" not in BASE_YAML


def write_sweep(folder: Path, body: str) -> Path:
    """A base YAML and a sweep file (``base: base.yaml`` plus ``body``) in ``folder``."""
    (folder / "base.yaml").write_text(BASE_YAML)
    path = folder / "sweep.yaml"
    path.write_text("base: base.yaml\n" + body)
    return path
