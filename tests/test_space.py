"""Spaces validate symbolic and numeric batches with clear messages."""

import numpy as np
import pytensor.tensor as pt
import pytest

from pylearn_vae.space import CompositeSpace, SpaceMismatchError, VectorSpace


def test_vector_space_batch_and_validate():
    space = VectorSpace(5)
    X = space.make_theano_batch("X")
    assert X.type.shape == (None, 5) and X.dtype == "float32"
    space.validate(X)
    space.validate(np.zeros((3, 5)))
    with pytest.raises(
        SpaceMismatchError, match="data has 4 columns but VectorSpace\\(dim=5\\) expects 5"
    ):
        space.validate(np.zeros((3, 4)))
    with pytest.raises(SpaceMismatchError, match="3-d"):
        space.validate(pt.tensor3(dtype="float32"))
    with pytest.raises(SpaceMismatchError, match="7 columns"):
        space.validate(pt.matrix(shape=(None, 7), dtype="float32"))
    with pytest.raises(ValueError, match="positive integer"):
        VectorSpace(0)


def test_composite_space_equality_and_validate():
    a = CompositeSpace([VectorSpace(2), VectorSpace(3)])
    assert a == CompositeSpace([VectorSpace(2), VectorSpace(3)])
    assert a != CompositeSpace([VectorSpace(3), VectorSpace(2)])
    assert a.get_total_dimension() == 5
    a.validate((np.zeros((1, 2)), np.zeros((1, 3))))
    with pytest.raises(SpaceMismatchError, match="tuple of 2"):
        a.validate(np.zeros((1, 5)))
