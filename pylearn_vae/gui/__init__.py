"""Viewing images of examples, samples and weights (``PatchViewer``)."""
