"""Conv2DSpace: construction, validation, and formatting to and from VectorSpace."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pylearn_vae.space import Conv2DSpace, SpaceMismatchError, VectorSpace


def test_construction_and_equality():
    s = Conv2DSpace(shape=[4, 5], num_channels=2)
    assert s.axes == ("b", 0, 1, "c")
    assert s.get_total_dimension() == 40
    assert s == Conv2DSpace((4, 5), channels=2)
    assert s != Conv2DSpace((4, 5), num_channels=2, axes=("b", "c", 0, 1))
    with pytest.raises(ValueError, match="exactly one of num_channels and channels"):
        Conv2DSpace((4, 5))
    with pytest.raises(ValueError, match="two positive integers"):
        Conv2DSpace((4,), num_channels=1)
    with pytest.raises(ValueError, match="axes must order"):
        Conv2DSpace((4, 5), num_channels=1, axes=("b", 0, 0, "c"))


def test_batches_and_validation():
    s = Conv2DSpace((4, 5), num_channels=2, axes=("b", "c", 0, 1))
    batch = s.make_theano_batch("x", batch_size=3)
    assert batch.type.shape == (3, 2, 4, 5) and batch.dtype == "float32"
    s.validate(batch)
    s.validate(np.zeros((7, 2, 4, 5)))
    with pytest.raises(SpaceMismatchError, match="size 2 on axis 'c'"):
        s.validate(np.zeros((7, 3, 4, 5)))
    with pytest.raises(SpaceMismatchError, match="4-d"):
        s.validate(pt.matrix(dtype="float32"))


@pytest.mark.parametrize("axes", [("b", 0, 1, "c"), ("b", "c", 0, 1), ("c", 0, 1, "b")])
@pytest.mark.compiles
def test_vector_round_trip_uses_b01c_flattening(axes):
    space = Conv2DSpace((2, 3), num_channels=2, axes=axes)
    vec = VectorSpace(12)
    X = np.arange(2 * 12, dtype="float32").reshape(2, 12)
    topo = vec.np_format_as(X, space)
    b01c = topo.transpose([axes.index(a) for a in ("b", 0, 1, "c")])
    assert b01c[1, 1, 2, 0] == X[1, (1 * 3 + 2) * 2 + 0]
    np.testing.assert_array_equal(space.np_format_as(topo, vec), X)
    x = pt.matrix(dtype="float32")
    f = pytensor.function(
        [x], [vec.format_as(x, space), space.format_as(vec.format_as(x, space), vec)]
    )
    sym_topo, back = f(X)
    np.testing.assert_array_equal(sym_topo, topo)
    np.testing.assert_array_equal(back, X)


def test_format_as_refuses_a_different_size():
    with pytest.raises(SpaceMismatchError, match="12 and 10 dimensions"):
        VectorSpace(12).np_format_as(np.zeros((1, 12)), Conv2DSpace((2, 5), num_channels=1))
