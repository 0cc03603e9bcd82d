"""Calls that skip PyTensor's input checks only when the checks would find nothing
(:class:`pylearn_vae.speedups.CheckedOnce`).

The functions here update shared variables in place, so two that came to
share one array would corrupt each other: exactly what PyTensor's per-call
check prevents, and what a trusted call must never let through. Each test
compares against the same arithmetic done in NumPy.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pylearn_vae.compile import function, resolve_mode
from pylearn_vae.speedups import CheckedOnce

# Tests of the speed machinery itself: skipped when PYLEARN_VAE_SPEEDUPS=0 turns it off.
pytestmark = pytest.mark.speedups

F32 = np.float32


def _validations(fn):
    """A context counting the calls ``fn`` made with PyTensor's checks."""
    from pylearn_vae.speedups.support import innermost

    inner = innermost(fn.function)
    cls = type(inner)
    # PyTensor's private per-call check: if it is renamed this fails loudly,
    # and the counts below would then need another way to be observed.
    assert hasattr(cls, "_validate_inputs"), "PyTensor moved Function._validate_inputs"
    return mock.patch.object(
        cls, "_validate_inputs", autospec=True, side_effect=cls._validate_inputs
    )


@pytest.fixture(scope="module")
def stepper():
    """``step(x)``: a += x; b *= 2 (both in place), returning sum(a) + sum(b)."""
    a = pytensor.shared(np.zeros(5, F32), name="a")
    b = pytensor.shared(np.ones(5, F32), name="b")
    x = pt.vector("x", dtype="float32", shape=(5,))
    fn = function([x], a.sum() + b.sum(), updates={a: a + x, b: b * 2})
    return fn, a, b


def _reset(a, b):
    a.set_value(np.zeros(5, F32))
    b.set_value(np.ones(5, F32))


@pytest.mark.compiles
def test_calls_after_the_first_skip_the_checks_and_compute_the_same(stepper):
    fn, a, b = stepper
    _reset(a, b)
    assert isinstance(fn, CheckedOnce)
    x = np.arange(5, dtype=F32)
    ref_a, ref_b = np.zeros(5, F32), np.ones(5, F32)
    with _validations(fn) as checked:
        for _ in range(4):
            got = fn(x)  # the output is of the values before the updates
            assert float(got) == pytest.approx(float(ref_a.sum() + ref_b.sum()))
            ref_a, ref_b = ref_a + x, ref_b * 2
    # Only the very first call of this function is checked (or none, if an
    # earlier test made it); every later one is trusted.
    assert checked.call_count <= 1
    np.testing.assert_array_equal(a.get_value(), ref_a)
    np.testing.assert_array_equal(b.get_value(), ref_b)


@pytest.mark.compiles
def test_values_replaced_from_outside_send_the_next_call_through_the_checks():
    """Two shared variables set to one array: the next call is PyTensor's checked
    call, and gives what that gives (for a function loaded from the graph
    cache PyTensor copies one of the two; a trusted call would have updated
    one array twice in place)."""
    a = pytensor.shared(np.zeros(5, F32), name="a")
    b = pytensor.shared(np.ones(5, F32), name="b")
    x = pt.vector("x", dtype="float32", shape=(5,))
    fn = function([x], x.sum(), updates={a: a + x, b: b * 2})
    fn(np.zeros(5, F32))  # a first call: later ones may be trusted
    x1 = np.ones(5, F32)

    def aliased():
        one = np.full(5, 3.0, F32)
        a.set_value(one, borrow=True)
        b.set_value(one, borrow=True)

    aliased()
    with _validations(fn) as checked:
        fn(x1)
    assert checked.call_count == 1
    got = a.get_value(), b.get_value()
    from pylearn_vae.speedups.support import innermost

    aliased()
    innermost(fn.function)(x1)  # PyTensor's own call, with its checks
    np.testing.assert_array_equal(got[0], a.get_value())
    np.testing.assert_array_equal(got[1], b.get_value())
    with _validations(fn) as checked:
        fn(x1)  # the direct call left new arrays that share nothing: trusted
        fn(x1)
    assert checked.call_count == 0
    np.testing.assert_array_equal(a.get_value(), got[0] + 2 * x1)
    np.testing.assert_array_equal(b.get_value(), got[1] * 4)


@pytest.mark.parametrize(
    "argument",
    [
        [1.0, 2.0, 3.0, 4.0, 5.0],  # a list: filter converts it
        np.arange(5, dtype=np.float64),  # another dtype: filter refuses it
        np.arange(10, dtype=F32)[::2],  # a strided view: accepted as it is
        np.arange(6, dtype=F32),  # the wrong length for a (5,) input
    ],
    ids=["list", "float64", "strided", "wrong-length"],
)
@pytest.mark.compiles
def test_arguments_not_exactly_of_the_input_type_get_pytensors_answer(stepper, argument):
    fn, a, b = stepper
    _reset(a, b)
    fn(np.zeros(5, F32))
    plain = pytensor.function(
        [x := pt.vector("x", dtype="float32", shape=(5,))],
        x * 1,
        mode=resolve_mode(),
    )
    try:
        expected = plain(argument)
    except Exception as exc:  # PyTensor refuses it: so must the checked function
        with pytest.raises(type(exc)):
            fn(argument)
        return
    before = a.get_value()
    fn(argument)
    np.testing.assert_array_equal(a.get_value(), before + expected)


@pytest.mark.compiles
def test_keyword_arguments_and_first_failures_take_the_checked_path():
    a = pytensor.shared(np.zeros(3, F32), name="a")
    x = pt.vector("x", dtype="float32", shape=(3,))
    fn = function([x], a.sum(), updates={a: a + x})
    with pytest.raises(TypeError):
        fn(np.zeros(4, F32))  # a failed first call teaches nothing
    assert fn._inner is None
    fn(x=np.ones(3, F32))
    fn(np.ones(3, F32))
    np.testing.assert_array_equal(a.get_value(), np.full(3, 2.0, F32))


@pytest.mark.compiles
def test_a_function_reading_a_mutable_argument_is_always_checked():
    x = pt.vector("x", dtype="float32", shape=(3,))
    fn = CheckedOnce(pytensor.function([pytensor.In(x, mutable=True)], x + 1, mode=resolve_mode()))
    fn(np.zeros(3, F32))
    assert fn._inner is None  # in-place use of an argument: PyTensor's checks stay on
    np.testing.assert_array_equal(fn(np.ones(3, F32)), np.full(3, 2.0, F32))


@pytest.mark.parametrize(
    "updates",
    [
        lambda a, b, x: {a: b},
        lambda a, b, x: {a: b, b: a},
        lambda a, b, x: {a: b[::-1], b: b + x},
    ],
    ids=["copy", "swap", "view"],
)
@pytest.mark.compiles
def test_the_function_itself_never_leaves_two_values_sharing_memory(updates):
    """What a trusted call relies on: PyTensor copies an update that would
    otherwise be another input's array (or a view of it), so the values the
    function leaves never share memory."""
    a = pytensor.shared(np.zeros(5, F32), name="a")
    b = pytensor.shared(np.arange(5, dtype=F32), name="b")
    x = pt.vector("x", dtype="float32", shape=(5,))
    fn = function([x], x.sum(), updates=updates(a, b, x))
    for _ in range(3):
        fn(np.ones(5, F32))
        assert not np.shares_memory(a.get_value(borrow=True), b.get_value(borrow=True))


def _unaligned(values):
    """An int64 array (a view one byte into a buffer) that is not aligned."""
    raw = np.zeros(8 * len(values) + 1, np.uint8)
    array = np.frombuffer(raw.data, np.int64, len(values), offset=1)
    array[:] = values
    assert not array.flags.aligned
    return array


def _index_function():
    """``f(i) = sum(w[i])`` with an int64 index argument, as the training step."""
    w = pytensor.shared(np.arange(6, dtype=F32), name="w")
    i = pt.vector("i", dtype="int64")
    fn = function([i], w[i].sum())
    fn(np.array([0, 1]))
    return fn


@pytest.mark.parametrize(
    "argument",
    [
        np.array([2, 3], dtype=np.longlong),  # equal to int64 as a dtype, not in PyTensor's C code
        _unaligned([2, 3]),
    ],
    ids=["longlong", "unaligned"],
)
@pytest.mark.compiles
def test_arrays_filter_would_convert_or_refuse_are_checked(argument):
    fn = _index_function()
    assert fn._inner is not None  # calls of this function may be trusted...
    with _validations(fn) as checked:
        try:
            fn(argument)
        except Exception:
            pass  # refusing is PyTensor's answer: what matters is who gave it
    assert checked.call_count == 1  # ...but not this one


@pytest.mark.compiles
def test_sparse_scalar_and_borrowed_arguments_keep_the_checks():
    import pytensor.scalar as ps
    import pytensor.sparse as sparse

    s = sparse.csr_matrix("s", dtype="float32")
    x = ps.float32("x")
    y = pt.vector("y", dtype="float32")
    for inputs, outputs, args in [
        (
            [s],
            sparse.structured_dot(s, pt.ones((3, 1), dtype="float32")).sum(),
            [np.eye(3, dtype=F32)],
        ),
        ([x], x * 2, [np.array(2.0, F32)]),
        ([pytensor.In(y, borrow=True)], y * 2, [np.ones(2, F32)]),
    ]:
        fn = function(inputs, outputs)
        first = fn(*args)  # filter converts the dense array to CSR, the 0-d one to a scalar
        assert fn._inner is None
        np.testing.assert_allclose(fn(*args), first)


@pytest.mark.compiles
def test_a_checked_function_can_be_copied():
    import copy

    fn = _index_function()
    assert copy.copy(fn).function is fn.function


@pytest.mark.compiles
def test_a_new_array_set_between_calls_keeps_the_calls_trusted():
    """A schedule sets the learning rate (a new 0-d array) before every step:
    those calls stay trusted and use the new rate; a value set to share
    memory with another shared value still sends the call through the checks."""
    rate = pytensor.shared(np.asarray(0.5, F32), name="rate")
    a = pytensor.shared(np.zeros(5, F32), name="a")
    b = pytensor.shared(np.ones(5, F32), name="b")
    x = pt.vector("x", dtype="float32", shape=(5,))
    fn = function([x], a.sum(), updates={a: a + rate * x, b: b + 1})
    xs = np.arange(5, dtype=F32)
    fn(xs)
    expected = xs * F32(0.5)
    with _validations(fn) as checked:
        for k in range(1, 4):
            rate.set_value(np.asarray(1.0 / (k + 1), F32))
            fn(xs)
            expected = expected + F32(1.0 / (k + 1)) * xs
        assert checked.call_count == 0
        np.testing.assert_allclose(a.get_value(), expected, rtol=1e-6)
        b.set_value(a.get_value(borrow=True), borrow=True)  # (b now is a's array)
        fn(xs)
        assert checked.call_count == 1
    assert not np.shares_memory(a.get_value(borrow=True), b.get_value(borrow=True))
