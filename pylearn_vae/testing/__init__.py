"""Helpers used by Pylearn2's test configurations."""
