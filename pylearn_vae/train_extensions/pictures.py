"""Two image grids that show how a VAE is doing, for the run trackers.

* **samples**: the means of :math:`p(\\mathbf{x}\\mid\\mathbf{z})` for
  latent vectors drawn from the prior, the same vectors at every call (a
  private random generator, reseeded each time), so that successive grids
  show the model changing, not the draw;
* **reconstructions**: test examples (evenly spaced over the set, which for
  binarized MNIST is ordered by class) each beside the mean of its
  reconstruction through the posterior's mean.

The grids never touch the model's own random generators: a run draws the
same training noise with or without them, and a resumed run the same
pictures.
"""

from __future__ import annotations

import logging

import numpy as np
import pytensor
from pytensor.graph.replace import clone_replace

from pylearn_vae.utils.image import image_shape_for, tile_grid
from pylearn_vae.utils.rng import reseed, rng_updates

__all__ = [
    "DEFAULT_IMAGES_EVERY",
    "GRID_NAMES",
    "PictureSchedule",
    "RunPictures",
    "check_images_every",
    "examples_to_reconstruct",
    "pictures_problem",
]

#: Monitoring sets to take the examples to reconstruct from, in order of preference.
PREFERRED_SETS = ("test", "valid")

#: Epochs between two pairs of grids when a tracker's ``images_every`` is not given.
DEFAULT_IMAGES_EVERY = 10

#: The grids' names: samples from the prior, test examples beside their reconstructions.
GRID_NAMES = ("samples", "reconstructions")


def pictures_problem(model) -> str | None:
    """Why ``model``'s examples cannot be drawn as the two grids, or ``None``."""
    if not (hasattr(model, "sample") and hasattr(model, "reconstruct")):
        return f"a {type(model).__name__} has no sample() and reconstruct() to draw"
    try:
        image_shape_for(int(model.nvis))
    except (AttributeError, TypeError, ValueError) as exc:
        return str(exc)
    return None


def check_images_every(owner: str, images_every) -> None:
    """:class:`ValueError` naming ``owner`` unless ``images_every`` is None or a
    whole number of epochs >= 0."""
    if images_every is not None and (
        isinstance(images_every, bool) or not isinstance(images_every, int) or images_every < 0
    ):
        raise ValueError(
            f"{owner}: images_every must be a whole number of epochs >= 0 "
            f"(0: no images), got {images_every!r}"
        )


def examples_to_reconstruct(dataset, algorithm, count: int) -> np.ndarray:
    """``count`` examples evenly spaced over the monitoring set ``test`` (else
    ``valid``, else the first one, else the training set)."""
    sets = getattr(algorithm, "monitoring_dataset", None)
    if not isinstance(sets, dict):
        sets = {} if sets is None else {"": sets}
    chosen = next((sets[name] for name in PREFERRED_SETS if name in sets), None)
    if chosen is None:
        chosen = next(iter(sets.values()), dataset)
    X = np.asarray(chosen.get_design_matrix())
    picks = np.unique(np.linspace(0, X.shape[0] - 1, num=min(count, X.shape[0])).round())
    return X[picks.astype(np.int64)]


class RunPictures:
    """Compile the two grids' functions for ``model`` (once, at the first call).

    Parameters
    ----------
    model : VAE
        The model being trained (its parameters are read at every call).
    examples : ndarray
        The examples to reconstruct (see :func:`examples_to_reconstruct`).
    side : int
        Grid side in tiles: ``side**2`` samples; ``side**2 / 2`` examples,
        each beside its reconstruction.
    seed : int
        Seed of the prior draws (the same at every call).
    """

    #: Examples the reconstructions grid of the default side shows.
    EXAMPLES = 32

    def __init__(self, model, examples: np.ndarray, side: int = 8, seed: int = 0) -> None:
        self.model = model
        self.shape = image_shape_for(int(model.nvis))
        self.side = int(side)
        self.examples = np.asarray(examples)[: self.side * self.side // 2]
        self.seed = seed
        self._sample = None
        self._reconstruct = None
        self._private_rngs: list = []

    def _compile(self) -> None:
        from pylearn_vae.compile import function

        _, means = self.model.sample(self.side * self.side)
        own = {
            rng: pytensor.shared(np.random.default_rng(0), name=f"{rng.name}_pictures")
            for rng in rng_updates(means)
        }
        self._private_rngs = list(own.values())
        self._sample = function([], clone_replace(means, replace=own))
        X = self.model.get_input_space().make_theano_batch(batch_size=len(self.examples))
        _, reconstruction = self.model.reconstruct(X)
        self._reconstruct = function([X], reconstruction)

    def samples(self) -> np.ndarray:
        """The samples grid, values in [0, 1]."""
        if self._sample is None:
            self._compile()
        reseed(self._private_rngs, self.seed)
        means = np.asarray(self._sample())
        return tile_grid(means.reshape(-1, *self.shape), self.side, self.side)

    def reconstructions(self) -> np.ndarray:
        """The reconstructions grid: each example, then its reconstruction."""
        if self._reconstruct is None:
            self._compile()
        pairs = np.stack([self.examples, np.asarray(self._reconstruct(self.examples))], axis=1)
        return tile_grid(pairs.reshape(-1, *self.shape), self.side, self.side)


class PictureSchedule:
    """The grids a tracker draws every ``images_every`` epochs (None: every
    :data:`DEFAULT_IMAGES_EVERY` epochs for a model whose examples are square
    images, else never; 0: never), from step 0.

    ``images_every`` given for a model whose examples cannot be drawn is a
    :class:`ValueError` naming ``owner``.
    """

    def __init__(self, owner: str, images_every: int | None, model, dataset, algorithm) -> None:
        self.every = DEFAULT_IMAGES_EVERY if images_every is None else images_every
        self.pictures: RunPictures | None = None
        if self.every == 0:
            return
        problem = pictures_problem(model)
        if problem is not None:
            if images_every is not None:
                raise ValueError(f"{owner}: images_every is {images_every}, but {problem}")
            logging.getLogger(__name__).info("%s: no image grids (%s)", owner, problem)
            return
        examples = examples_to_reconstruct(dataset, algorithm, RunPictures.EXAMPLES)
        self.pictures = RunPictures(model, examples)

    def due(self, step: int) -> dict[str, np.ndarray]:
        """The grids by name (:data:`GRID_NAMES`) when ``step`` is one of the
        schedule's, else none."""
        if self.pictures is None or step % self.every != 0:
            return {}
        grids = (self.pictures.samples(), self.pictures.reconstructions())
        return dict(zip(GRID_NAMES, grids, strict=True))
