"""Data sets: dense design matrices and binarized MNIST."""

from pylearn_vae.datasets.dense_design_matrix import DenseDesignMatrix

__all__ = ["DenseDesignMatrix"]
