"""Hyper-parameter sweeps on Ray Tune (the optional ``[sweep]`` extra).

:func:`~pylearn_vae.sweep.spec.load_spec` reads a sweep file (a base
training YAML and a search space over its dotted keys);
:func:`~pylearn_vae.sweep.runner.run_sweep` runs it on a local Ray instance
or a cluster, each trial being the ordinary training path on the trial's
YAML. ``scripts/sweep.py`` is the command line. See ``docs/sweeps.md``.
"""

from pylearn_vae.sweep.spec import SweepSpec, SweepSpecError, load_spec

__all__ = ["SweepSpec", "SweepSpecError", "load_spec"]
