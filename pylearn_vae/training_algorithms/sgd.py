"""Stochastic gradient descent, with Pylearn2's schedule names re-exported.

Pylearn2 kept SGD, its schedules and several extensions in one module; here
the schedules live in :mod:`~pylearn_vae.training_algorithms.schedules` and
``PolyakAveraging`` in :mod:`~pylearn_vae.train_extensions.polyak`, and they
are re-exported so that ``!obj:pylearn_vae.training_algorithms.sgd.ExponentialDecay``
keeps working.
"""

from __future__ import annotations

import contextlib
import logging
import time

import numpy as np
import pytensor
import pytensor.tensor as pt

from pylearn_vae import speedups
from pylearn_vae.compile import function, is_jax_mode, resolve_mode
from pylearn_vae.config.keywords import pylearn2_keywords
from pylearn_vae.datasets.dense_design_matrix import batch_indices
from pylearn_vae.errors import NumericalError, StopRequested
from pylearn_vae.monitor import Monitor
from pylearn_vae.train_extensions.polyak import PolyakAveraging
from pylearn_vae.training_algorithms.learning_rule import LearningRule, MomentumAdjustor
from pylearn_vae.training_algorithms.schedules import ExponentialDecay, LinearDecayOverEpoch
from pylearn_vae.utils import floatX, sharedX, whole_number
from pylearn_vae.utils.progress import progress_bar
from pylearn_vae.utils.rng import make_np_rng, register_rng, rng_updates
from pylearn_vae.utils.state import Stateful, random_state_from_dict, random_state_to_dict

logger = logging.getLogger(__name__)

__all__ = [
    "SGD",
    "ExponentialDecay",
    "LinearDecayOverEpoch",
    "MomentumAdjustor",
    "PolyakAveraging",
    "NumericalError",
    "StopRequested",
]


def _positive_learning_rate(value) -> float:
    try:
        lr = float(value)
    except (TypeError, ValueError):
        lr = float("nan")
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"SGD: learning_rate must be a positive number, got {value!r}")
    return lr


def _check_monitor_iteration_mode(mode: str) -> None:
    if mode != "sequential":
        raise ValueError(
            f"SGD: monitor_iteration_mode {mode!r} is not supported; "
            "monitoring always visits every example once"
        )


def _batch_size(value) -> int | None:
    """``value`` as an ``int`` (None stays None: the model's batch size is used)."""
    return None if value is None else whole_number(value, 1, "SGD: batch_size")


def _learning_rule(rule) -> LearningRule:
    """``rule``, or plain gradient descent when it is None."""
    if rule is None:
        return LearningRule()
    if not isinstance(rule, LearningRule):
        raise TypeError(f"SGD: learning_rule must be a LearningRule, got {type(rule).__name__}")
    return rule


def _shuffling_rng(seed) -> np.random.RandomState:
    """The generator that orders the minibatches, seeded by ``seed`` (Pylearn2's seed if None)."""
    return make_np_rng(
        None if seed is None else list(np.atleast_1d(seed)), default_seed=[2012, 10, 5]
    )


def _callbacks(update_callbacks) -> list:
    if update_callbacks is not None and not isinstance(update_callbacks, list | tuple):
        update_callbacks = [update_callbacks]
    for callback in update_callbacks or []:
        if not callable(callback):
            raise TypeError(f"SGD: update_callbacks entries must be callable, got {callback!r}")
    return list(update_callbacks or [])


class SGD:
    """Minibatch stochastic gradient descent.

    Parameters
    ----------
    learning_rate : float
        Initial learning rate. ``self.learning_rate`` is the shared variable
        the compiled step reads (schedules set it); ``self.base_learning_rate``
        (a float, saved in checkpoints) is the value schedules compute from:
        this one as float32 holds it, until :meth:`change_hyperparameters`.
    cost : Cost
        The objective to minimise.
    batch_size : int
        Examples per update.
    monitoring_batch_size : int, optional
        Examples per monitoring batch (large by default; monitoring is
        forward-only).
    monitoring_dataset : Dataset or dict of name -> Dataset, optional
        Sets whose channels are monitored after every epoch.
    termination_criterion : TerminationCriterion, optional
        When to stop (never, if None, as in Pylearn2).
    update_callbacks : list of callables, optional
        Called with the algorithm after every minibatch (e.g. ``ExponentialDecay``).
    learning_rule : LearningRule, optional
        How gradients become updates (plain SGD if None).
    train_iteration_mode : str
        ``shuffled_sequential`` (default), ``sequential`` or ``random_uniform``.
    seed : int or sequence
        Seeds the shuffling.
    theano_function_mode : str, optional
        PyTensor mode for the compiled functions (default: PyTensor's default).
    """

    @pylearn2_keywords
    def __init__(
        self,
        learning_rate: float,
        cost=None,
        batch_size: int | None = None,
        monitoring_batches=None,
        monitoring_dataset=None,
        monitor_iteration_mode: str = "sequential",
        termination_criterion=None,
        update_callbacks=None,
        learning_rule: LearningRule | None = None,
        set_batch_size: bool = False,
        train_iteration_mode: str | None = None,
        batches_per_iter=None,
        theano_function_mode=None,
        monitoring_costs=None,
        seed=(2012, 10, 5),
        monitoring_batch_size: int | None = None,
    ) -> None:
        _check_monitor_iteration_mode(monitor_iteration_mode)
        lr = _positive_learning_rate(learning_rate)
        batch_size = _batch_size(batch_size)
        update_callbacks = _callbacks(update_callbacks)
        learning_rule = _learning_rule(learning_rule)
        self.learning_rate = sharedX(lr, name="learning_rate")
        # The rate the first step uses, which the schedules decay from.
        self.base_learning_rate = float(self.learning_rate.get_value())
        self.cost = cost
        self.batch_size = batch_size
        self.monitoring_batch_size = monitoring_batch_size
        self.monitoring_dataset = monitoring_dataset
        self.termination_criterion = termination_criterion
        self.update_callbacks = update_callbacks
        self.learning_rule = learning_rule
        self.train_iteration_mode = train_iteration_mode or "shuffled_sequential"
        self.theano_function_mode = theano_function_mode
        self.seed = seed
        self.rng = _shuffling_rng(seed)
        self.monitor = None
        self.model = None
        self.progress = None
        self._train_functions: dict = {}
        self._data = None
        #: Set (to a reason such as "SIGINT") to stop at the next minibatch boundary.
        self.stop_requested: str | None = None
        #: Shared RNGs of the compiled training functions, by name.
        self.shared_rngs: dict = {}
        # Where the current epoch stands: the shuffling state at its start and
        # the number of minibatches already done (both saved by checkpoints).
        self._epoch_rng_state = None
        self._resume_position = 0
        #: Chooses the step's BLAS threads by measuring them
        #: (:class:`~pylearn_vae.speedups.threads.ThreadChooser`), or None: the
        #: libraries' own count stands. A training job sets it.
        self.threads = None

    # -- set-up -------------------------------------------------------------
    def setup(self, model, dataset) -> None:
        """Compile the training step for ``model`` on ``dataset`` and prepare monitoring."""
        if self.cost is None:
            raise ValueError(
                "SGD needs a cost (for a VAE: !obj:pylearn_vae.costs.vae.VAECriterion {})"
            )
        if self.batch_size is None:
            self.batch_size = getattr(model, "batch_size", None)
            if self.batch_size is None:
                raise ValueError("SGD needs a batch_size (neither SGD nor the model gives one)")
        X = dataset.get_design_matrix()
        model.get_input_space().np_validate(X[:1])
        self.model = model
        self._num_examples = X.shape[0]
        # The training set lives in a shared variable; each step gathers its
        # rows by index inside the graph (no per-step Python copy).
        self._data = pytensor.shared(
            np.ascontiguousarray(X, dtype=floatX()), name="train_data", borrow=True
        )
        self._mode = resolve_mode(self.theano_function_mode)
        self._static = is_jax_mode(self._mode)
        if self._static:
            speedups.keep_on_device(self._data, self._mode)
        # One step function per batch size where shapes must be static (JAX),
        # else one for all. The full-size step is compiled now in both cases:
        # it creates the learning rule's state, which a checkpoint may restore
        # before training starts.
        self._train_functions = {}
        self._step_function(self.batch_size)

        self.monitor = Monitor.get_monitor(model)
        self.monitor.setup(
            self.monitoring_dataset,
            self.cost,
            batch_size=self.monitoring_batch_size,
            mode=self.theano_function_mode,
            extra=self._monitoring_values,
            precompile=True,
        )
        if self.monitoring_dataset is not None and not self._static:
            # Where the monitoring function's code compiles in a second
            # process (speedups.second_process_compiles), the step's compiles
            # here meanwhile.
            speedups.compile_now(self._step_function(self.batch_size))

    def _compile_step(self, batch_size):
        model = self.model
        index = pt.tensor("batch_index", dtype="int64", shape=(batch_size,))
        X = self._data[index]
        cost = self.cost.training_expr(model, X)
        grads, cost_updates = self.cost.get_gradients(model, X, cost=cost)
        updates = self.learning_rule.get_updates(self.learning_rate, grads, model.get_lr_scalers())
        updates.update(cost_updates)
        model.modify_updates(updates)
        for rng in rng_updates([cost, list(updates.values())]):
            register_rng(self.shared_rngs, rng)
        return function([index], cost, updates=updates, mode=self._mode)

    def _step_function(self, size: int):
        key = size if self._static else None
        if key not in self._train_functions:
            self._train_functions[key] = self._compile_step(key)
        return self._train_functions[key]

    def _monitoring_values(self) -> dict:
        values = {"learning_rate": float(self.learning_rate.get_value())}
        values.update(self.learning_rule.monitoring_values())
        return values

    # -- training -------------------------------------------------------------
    def train(self, dataset) -> None:
        """Train for one epoch over ``dataset``."""
        if self.model is None:
            raise RuntimeError("SGD.train called before SGD.setup")
        n = self._num_examples
        num_batches = -(-n // self.batch_size)
        epoch = self.monitor.get_epochs_seen() + 1
        if self._resume_position:
            # Continue an epoch that a checkpoint interrupted: same order, later batches.
            random_state_from_dict(self.rng, self._epoch_rng_state)
        else:
            self._epoch_rng_state = random_state_to_dict(self.rng)
        skip, self._resume_position = self._resume_position, 0
        threads = None if self._static else self.threads  # (JAX: no BLAS of ours)
        if threads is not None and threads.due():
            with self.trial_steps() as step:
                threads.choose(step)
            logger.info("epoch %d: %s", epoch, threads.describe())
        start = time.perf_counter()
        with progress_bar(
            num_batches, f"epoch {epoch}", unit="batch", enabled=self.progress, initial=skip
        ) as bar:
            self._train_batches(bar, epoch, num_batches, skip)
        if threads is not None and num_batches > skip:
            threads.observe((time.perf_counter() - start) / (num_batches - skip))

    @contextlib.contextmanager
    def trial_steps(self):
        """Yield a function that runs one training step on the training set's
        first minibatch; on leaving, every shared variable the step reads
        (parameters, the learning rule's state, random generators) is as it
        was before, so the trial steps leave no trace in the run."""
        if self.model is None:
            raise RuntimeError("SGD.trial_steps called before SGD.setup")
        size = min(self.batch_size, self._num_examples)
        step = self._step_function(size)
        index = np.arange(size, dtype="int64")
        saved = [
            (variable, variable.get_value(borrow=False))
            for variable in step.get_shared()
            if variable is not self._data  # (read only, and the largest)
        ]
        try:
            yield lambda: step(index)
        finally:
            for variable, value in saved:
                variable.set_value(value, borrow=True)

    def _train_batches(self, bar, epoch: int, num_batches: int, skip: int) -> None:
        """The minibatch loop of :meth:`train` (from minibatch ``skip`` on)."""
        n = self._num_examples
        for i, idx in enumerate(
            batch_indices(n, self.batch_size, self.train_iteration_mode, self.rng)
        ):
            if i < skip:
                continue
            if self.stop_requested:
                self._resume_position = i
                raise StopRequested(
                    f"stopped by {self.stop_requested} in epoch {epoch} before minibatch {i + 1} of {num_batches}"
                )
            value = self._step_function(len(idx))(idx)
            if not np.isfinite(value):
                raise NumericalError(
                    f"the training objective became {float(value)} in epoch {epoch}, minibatch "
                    f"{i + 1} of {num_batches}; lower the learning rate"
                )
            self.monitor.report_batch(len(idx))
            for callback in self.update_callbacks:
                callback(self)
            bar.update()
            if i % 10 == 0:
                bar.set_postfix(objective=f"{float(value):.3f}", refresh=False)

    def continue_learning(self, model) -> bool:
        if self.termination_criterion is None:
            return True
        return self.termination_criterion.continue_learning(model)

    # -- checkpoints --------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything SGD needs to continue exactly where it is."""
        callbacks = {
            str(i): c.state_dict()
            for i, c in enumerate(self.update_callbacks)
            if isinstance(c, Stateful)
        }
        return {
            "learning_rate": np.array(self.learning_rate.get_value()),
            "base_learning_rate": self.base_learning_rate,
            "rng": random_state_to_dict(self.rng),
            "epoch_rng": self._epoch_rng_state if self._epoch_rng_state is not None else {},
            "resume_position": self._resume_position,
            "learning_rule": self.learning_rule.state_dict(),
            "update_callbacks": callbacks,
            **({} if self.threads is None else {"threads": self.threads.state_dict()}),
        }

    def set_learning_rate(self, value) -> None:
        """The one way the learning rate changes during training (schedules,
        checkpoints): the compiled step and the monitor's ``learning_rate``
        channel both read this shared variable."""
        self.learning_rate.set_value(np.asarray(value, dtype=self.learning_rate.dtype))

    def change_hyperparameters(
        self,
        learning_rate: tuple[float, float] | None = None,
        init_momentum: tuple[float, float] | None = None,
    ) -> dict[str, tuple[float, float]]:
        """Apply YAML values that changed from ``old`` to ``new`` (``(old, new)`` pairs)
        to a run in progress, such as one restored from a checkpoint.

        ``learning_rate``: the current rate and ``base_learning_rate`` are
        multiplied by new/old, so a schedule goes on from where it was, scaled.
        ``init_momentum``: the momentum and the rule's ``init_momentum``
        become the new value (a learning rule without momentum has neither).

        Returns
        -------
        dict
            ``{"learning_rate": (before, after)}`` and ``{"momentum": (before,
            after)}`` for what changed: the value the next step would have
            used and the one it will use (before rounding to float32).
        """
        changed = {}
        if learning_rate is not None:
            old, new = (_positive_learning_rate(value) for value in learning_rate)
            before = float(self.learning_rate.get_value())
            self.base_learning_rate *= new / old
            self.set_learning_rate(before * (new / old))
            changed["learning_rate"] = (before, before * (new / old))
        if init_momentum is not None:
            momentum = self.learning_rule.change_init_momentum(init_momentum[1])
            if momentum is not None:
                changed["momentum"] = momentum
        return changed

    def load_state_dict(self, state: dict) -> None:
        self.set_learning_rate(state["learning_rate"])
        # A checkpoint written before SGD kept the base has none: the rate it
        # was at stands in (what a schedule's first call would have taken);
        # legacy_state.adopt_saved_bases gives the one its schedules kept.
        self.base_learning_rate = float(
            state.get("base_learning_rate", self.learning_rate.get_value())
        )
        random_state_from_dict(self.rng, state["rng"])
        self._epoch_rng_state = state["epoch_rng"] or None
        self._resume_position = int(state["resume_position"])
        self.learning_rule.load_state_dict(state["learning_rule"])
        for key, sub in state["update_callbacks"].items():
            self.update_callbacks[int(key)].load_state_dict(sub)
        if self.threads is not None and state.get("threads"):
            self.threads.load_state_dict(state["threads"])
