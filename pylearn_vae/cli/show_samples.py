"""``scripts/show_samples.py``: draw samples (or reconstructions) of a VAE to a PNG grid."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from pylearn_vae.cli.common import CLIError, check_output, load_model, program, run, say
from pylearn_vae.text import escape

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="show_samples.py",
        description="Write a grid of samples from p(z) "
        "decoded by a trained VAE (or test images and their reconstructions) to a PNG.",
    )
    p.add_argument("model", help="saved model (.h5, or a .pkl from pylearn_vae)")
    p.add_argument("--rows", type=int, default=10)
    p.add_argument("--cols", type=int, default=10)
    p.add_argument("--out", default="samples.png", help="PNG file to write (default samples.png)")
    p.add_argument(
        "--show-means", action="store_true", help="show the conditional means beside the samples"
    )
    p.add_argument(
        "--reconstruct", action="store_true", help="show test images beside their reconstructions"
    )
    p.add_argument("--scale", type=int, default=2, help="pixel magnification (default 2)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    return p


#: The most images on a side of the grid (100 x 100: every test image at most).
MAX_SIDE = 100


def _check_args(args) -> None:
    """Refuse out-of-range counts and an output path that cannot or must not be written."""
    if not (1 <= args.rows <= MAX_SIDE and 1 <= args.cols <= MAX_SIDE and 1 <= args.scale <= 16):
        raise CLIError(f"--rows and --cols must be from 1 to {MAX_SIDE}, --scale from 1 to 16")
    if args.seed < 0:
        raise CLIError(f"--seed must be >= 0, got {args.seed}")
    check_output(args.out, reads=[args.model], flag="--out")


def _body(args) -> int:
    from pylearn_vae.compile import function
    from pylearn_vae.utils.image import image_shape_for, tile_grid, write_png
    from pylearn_vae.utils.rng import reseed, rng_updates

    _check_args(args)
    model = load_model(args.model)
    try:
        h, w = image_shape_for(model.nvis)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    n = args.rows * args.cols
    if args.reconstruct:
        from pylearn_vae.datasets.binarized_mnist import BinarizedMNIST

        try:
            test = BinarizedMNIST("test").X
        except (OSError, ValueError) as exc:
            raise CLIError(str(exc)) from None
        if n > test.shape[0]:
            raise CLIError(
                f"--rows x --cols asks for {n} test images; the test split has {test.shape[0]}"
            )
        picks = np.random.default_rng(args.seed).choice(test.shape[0], size=n, replace=False)
        X = model.get_input_space().make_theano_batch()
        _, means = model.reconstruct(X)
        left, right = test[picks], function([X], means)(test[picks])
    else:
        samples, means = model.sample(n)
        outputs = [samples, means]
        f = function([], outputs)
        reseed(rng_updates(outputs), args.seed)
        left, right = f()
    pairs = args.reconstruct or args.show_means
    images = np.stack([left, right], axis=1).reshape(-1, h, w) if pairs else left.reshape(-1, h, w)
    grid = tile_grid(images, args.rows, args.cols * (2 if pairs else 1))
    try:
        write_png(args.out, grid, scale=args.scale)
    except Exception as exc:
        raise CLIError(f"cannot write {args.out}: {exc}") from None
    what = (
        "test images and reconstructions"
        if args.reconstruct
        else "samples" + (" and means" if args.show_means else "")
    )
    say(
        f"wrote {n} {what} to {escape(args.out)} ({grid.shape[1] * args.scale} x {grid.shape[0] * args.scale} pixels)",
        file=sys.stderr,
    )
    return 0


@program
def main(argv=None) -> int:
    return run(_body, build_parser().parse_args(argv))
