"""Costs: objectives that a training algorithm minimises."""

from pylearn_vae.costs.cost import Cost

__all__ = ["Cost"]
