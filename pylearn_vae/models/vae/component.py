"""What priors and conditionals share: belonging to one VAE.

:class:`VAEComponent` is the single implementation of ``get_vae`` /
``set_vae`` used by :class:`~pylearn_vae.models.vae.prior.Prior` and
:class:`~pylearn_vae.models.vae.conditional.Conditional`. The object given
to :meth:`VAEComponent.set_vae` needs only two attributes, as in Pylearn2:
``rng`` (a NumPy ``RandomState``-like object with ``randint``) and
``batch_size``. The component seeds its own source of symbolic noise from
one ``randint`` draw of that generator, so a component can be built and
exercised with a stand-in object instead of a full
:class:`~pylearn_vae.models.vae.VAE`.
"""

from __future__ import annotations

from pylearn_vae.utils.rng import SymbolicRNG

__all__ = ["VAEComponent"]

#: Exclusive upper bound of the seed drawn from the VAE's generator.
SEED_BOUND = 2**30


class VAEComponent:
    """Mixin giving a model the ``vae``, ``rng``, ``srng`` and ``batch_size`` slots.

    Subclasses call :meth:`_init_vae_slots` from ``__init__`` and may
    override :meth:`_noise_name` (the prefix of their random generators'
    names, which must be unique within a VAE because checkpoints find the
    generators by name).
    """

    #: True for a component with no closed-form KL against any partner: the
    #: VAE then looks up no KLIntegrator and estimates the KL term by Monte
    #: Carlo without warning about it.
    kl_by_monte_carlo = False

    def _init_vae_slots(self) -> None:
        #: The VAE this component belongs to (None until :meth:`set_vae`).
        self.vae = None
        #: The VAE's NumPy generator, used for weight initialisation.
        self.rng = None
        #: This component's source of symbolic noise (see ``theano_rng``).
        self.srng: SymbolicRNG | None = None
        self.batch_size = None

    def __setstate__(self, state: dict) -> None:
        # pylearn_vae 0.x pickles kept the VAE in a private ``_vae``.
        if "_vae" in state:
            state = dict(state)
            state["vae"] = state.pop("_vae")
        super().__setstate__(state)

    def _noise_name(self) -> str:
        return type(self).__name__.lower()

    @property
    def theano_rng(self) -> SymbolicRNG | None:
        """Pylearn2's name for :attr:`srng` (its ``normal``/``uniform`` take
        the same ``size``, ``avg``/``std`` or ``low``/``high`` and ``dtype``)."""
        return self.srng

    def get_vae(self):
        """Return the VAE this component belongs to, or None."""
        return self.vae

    def set_vae(self, vae) -> None:
        """Attach this component to ``vae``; a component belongs to one VAE only.

        Parameters
        ----------
        vae : object
            Anything with ``rng`` (with a ``randint(high)`` method, such as
            ``numpy.random.RandomState``) and ``batch_size``.

        Raises
        ------
        RuntimeError
            If the component already belongs to a VAE.
        TypeError
            If ``vae`` lacks ``rng.randint`` or ``batch_size``.
        """
        if self.vae is not None:
            raise RuntimeError(
                f"this {type(self).__name__} instance{self._describe()} already belongs "
                "to another VAE"
            )
        rng = getattr(vae, "rng", None)
        if not callable(getattr(rng, "randint", None)):
            raise TypeError(
                f"{type(self).__name__}.set_vae needs an object whose 'rng' attribute has a "
                f"randint method (a numpy.random.RandomState), got {type(vae).__name__} with "
                f"rng={rng!r}"
            )
        if not hasattr(vae, "batch_size"):
            raise TypeError(
                f"{type(self).__name__}.set_vae needs an object with a 'batch_size' "
                f"attribute, got {type(vae).__name__}"
            )
        seed = int(rng.randint(SEED_BOUND))
        self.vae = vae
        self.rng = rng
        self.srng = SymbolicRNG(seed, name=self._noise_name())
        self.batch_size = vae.batch_size

    def _describe(self) -> str:
        name = getattr(self, "name", None)
        return f" ({name!r})" if name else ""

    def _require_srng(self) -> SymbolicRNG:
        if self.srng is None:
            raise RuntimeError(
                f"{type(self).__name__}{self._describe()} must be given to a VAE "
                "(set_vae) before it can draw random samples"
            )
        return self.srng
