"""The numpy backend's compiled kernels (compiled.py, numba): ReLU, its gradient, 2x2 max
pooling, a one-channel convolution's weight gradient, the softmax cross-entropy with its
gradient and the SGD update against float64 references and hand-derived values, the inputs
they leave to the table's other kernels, their thread splits, each loop's source run
uncompiled, and how the backend turns them on (numba installed, ``PLUGRAD_NUMBA``, a cache
directory or none). Batch norm's compiled loops are checked beside NumPy's in
test_batch_norm_kernels.py.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from plugrad.backends.numpy_backend import compiled, kernels, pool
from tests.backends.numpy_backend.test_conv_pool_kernels import ref_max_pool, ref_max_pool_grad
from tests.helpers import ROOT
from tests.helpers.cli import plugrad, python
from tests.helpers.numerics import ref_conv_grads

pytest.importorskip("numba")

NUMPY = kernels.kernel_table(np)
COMPILED = compiled.kernels(NUMPY)
TWO_BY_TWO = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))


@pytest.fixture(autouse=True)
def small_arrays_compiled(monkeypatch):
    """The tests' small arrays take the compiled loops (from 1 element, not 4 K)."""
    monkeypatch.setattr(compiled, "MIN_ELEMENTS", 1)


@pytest.fixture
def loop_calls(monkeypatch) -> Counter:
    """Calls of each compiled loop, counted (the loops still run)."""
    calls: Counter = Counter()
    module = compiled.loops()
    for name in ("relu", "relu_grad", "max_pool_2x2", "max_pool_2x2_grad",
                 "conv_grad_weight_rows", "softmax_cross_entropy_rows",
                 "softmax_cross_entropy_grad_rows", "sgd_step", "sgd_momentum_step"):
        loop = getattr(module, name)

        def counted(*args, _loop=loop, _name=name):
            calls[_name] += 1
            return _loop(*args)

        monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_and_its_gradient_against_float64(dtype, loop_calls):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5, 7)).astype(dtype)
    x.flat[:4] = [np.nan, np.inf, -np.inf, 0.0]
    y = COMPILED["relu"](x)
    expected = np.maximum(x.astype(np.float64), 0)  # nan stays nan, inf stays inf
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y.astype(np.float64), expected)
    g = rng.standard_normal(x.shape).astype(dtype)
    g.flat[4:6] = np.nan
    gx = COMPILED["relu_grad"](g, y)
    positive = expected > 0
    want = np.where(positive, g.astype(np.float64), 0.0)
    np.testing.assert_array_equal(gx.astype(np.float64), want)
    assert loop_calls == Counter(relu=1, relu_grad=1)


def test_relu_gradient_is_zero_where_the_output_is_not_positive_even_for_nan_g():
    y = np.array([0.0, 2.0, np.nan, 0.0], np.float32)
    g = np.array([np.nan, 3.0, 5.0, np.inf], np.float32)
    np.testing.assert_array_equal(COMPILED["relu_grad"](g, y), [0.0, 3.0, 0.0, 0.0])


def test_other_dtypes_and_layouts_keep_numpys_kernels(loop_calls):
    ints = np.arange(-3, 3, dtype=np.int32).reshape(2, 3)
    np.testing.assert_array_equal(COMPILED["relu"](ints), [[0, 0, 0], [0, 1, 2]])
    half = np.array([-1.0, 2.0], np.float16)
    assert COMPILED["relu"](half).dtype == np.float16
    strided = np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)[:, ::2]
    np.testing.assert_array_equal(COMPILED["relu"](strided), np.maximum(strided, 0))
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 6)).astype(np.float32)
    geometry = dict(kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    y = COMPILED["max_pool2d"](x, **geometry)
    np.testing.assert_array_equal(y, ref_max_pool(x, (3, 3), (1, 1), (1, 1))[0])
    assert loop_calls == Counter()  # every one of these ran NumPy's kernel


def test_arrays_under_min_elements_keep_numpys_kernels(monkeypatch, loop_calls):
    monkeypatch.setattr(compiled, "MIN_ELEMENTS", 64)
    small = np.linspace(-1, 1, 63, dtype=np.float32)
    np.testing.assert_array_equal(COMPILED["relu"](small), np.maximum(small, 0))
    assert loop_calls == Counter()
    COMPILED["relu"](np.linspace(-1, 1, 64, dtype=np.float32))
    assert loop_calls == Counter(relu=1)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (3, 2, 7, 9), (1, 1, 2, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_2x2_against_float64(shape, dtype, loop_calls):
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 4, shape).astype(dtype)  # small integers: many ties in a window
    y = COMPILED["max_pool2d"](x, **TWO_BY_TWO)
    y_ref, _ = ref_max_pool(x, (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(y.astype(np.float64), y_ref)
    g = rng.standard_normal(y.shape).astype(dtype)
    gx = COMPILED["max_pool2d_grad"](g, x, y, **TWO_BY_TWO)
    assert gx.shape == x.shape and gx.dtype == x.dtype
    # the whole window's g on its first maximum (row-major), 0 elsewhere and outside windows
    np.testing.assert_array_equal(gx.astype(np.float64),
                                  ref_max_pool_grad(g, x, (2, 2), (2, 2), (0, 0)))
    assert loop_calls == Counter(max_pool_2x2=1, max_pool_2x2_grad=1)


def test_max_pool_2x2_nan_and_infinities():
    x = np.array([[[[np.nan, 1.0, -np.inf, -np.inf],
                    [5.0, 2.0, -np.inf, -np.inf]]]], np.float32)
    y = COMPILED["max_pool2d"](x, **TWO_BY_TWO)
    np.testing.assert_array_equal(y, [[[[np.nan, -np.inf]]]])  # a nan wins, as np.maximum's
    np.testing.assert_array_equal(y, pool.kernels(np)["max_pool2d"](x, **TWO_BY_TWO))
    gx = COMPILED["max_pool2d_grad"](np.array([[[[7.0, 3.0]]]], np.float32), x, y, **TWO_BY_TWO)
    # the nan window routes nothing; the all -inf window routes to its first element
    np.testing.assert_array_equal(gx, [[[[0, 0, 3, 0], [0, 0, 0, 0]]]])


def test_large_relus_split_over_the_threads(monkeypatch, loop_calls):
    from plugrad.backends.numpy_backend import _threads

    monkeypatch.setattr(_threads, "_threads", 2)
    monkeypatch.setattr(compiled, "MIN_SPLIT_ELEMENTS", 10)
    x = np.random.default_rng(4).standard_normal((3, 7)).astype(np.float32)  # 21: 11 + 10
    y = COMPILED["relu"](x)
    g = np.arange(21, dtype=np.float32).reshape(3, 7)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(COMPILED["relu_grad"](g, y), np.where(x > 0, g, 0))
    assert loop_calls == Counter(relu=2, relu_grad=2)  # one range per thread


def test_a_large_pooling_splits_its_batch_over_the_threads(monkeypatch, loop_calls):
    from plugrad.backends.numpy_backend import _threads

    monkeypatch.setattr(_threads, "_threads", 2)
    monkeypatch.setattr(compiled, "MIN_SPLIT_ELEMENTS", 0)
    x = np.random.default_rng(3).integers(-2, 3, (5, 2, 6, 6)).astype(np.float32)
    y = COMPILED["max_pool2d"](x, **TWO_BY_TWO)
    np.testing.assert_array_equal(y, ref_max_pool(x, (2, 2), (2, 2), (0, 0))[0])
    g = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(COMPILED["max_pool2d_grad"](g, x, y, **TWO_BY_TWO),
                                  ref_max_pool_grad(g, x, (2, 2), (2, 2), (0, 0)))
    assert loop_calls == Counter(max_pool_2x2=2, max_pool_2x2_grad=2)  # samples 0-2 and 3-4


def _grad_weight_case(x_shape, w_shape, padding, dtype=np.float32, seed=5):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    oh, ow = (x_shape[2 + i] + 2 * padding[i] - w_shape[2 + i] + 1 for i in range(2))
    g = rng.standard_normal((x_shape[0], w_shape[0], oh, ow)).astype(dtype)
    return g, x, w


# (input, weight, padding): LeNet's conv1, padded and odd-sized ones, 5 output channels (one
# block of four and one left over), a batch of one (one range)
ROW_CASES = [((6, 1, 28, 28), (6, 1, 5, 5), (0, 0)), ((3, 1, 17, 23), (5, 1, 3, 4), (1, 2)),
             ((1, 1, 16, 30), (4, 1, 5, 3), (2, 1)), ((4, 1, 20, 20), (9, 1, 1, 1), (0, 0))]


@pytest.mark.parametrize("x_shape, w_shape, padding", ROW_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_channel_weight_gradient_against_float64(x_shape, w_shape, padding, dtype,
                                                     loop_calls):
    g, x, w = _grad_weight_case(x_shape, w_shape, padding, dtype)
    got = COMPILED["conv2d_grad_weight"](g, x, weight_shape=w_shape, stride=(1, 1),
                                         padding=padding, dilation=(1, 1), groups=1)
    _, want = ref_conv_grads(g, x, w, (1, 1), padding, (1, 1), 1)
    assert got.dtype == dtype and got.shape == w_shape
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(got, want, **tol)
    assert loop_calls == Counter(conv_grad_weight_rows=min(2, x_shape[0]))  # batch ranges


def test_the_weight_gradient_is_the_same_on_one_thread_and_two(monkeypatch):
    from plugrad.backends.numpy_backend import _threads

    g, x, _ = _grad_weight_case((9, 1, 28, 28), (6, 1, 5, 5), (0, 0))
    attrs = dict(weight_shape=(6, 1, 5, 5), stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                 groups=1)
    results = []
    for threads in (1, 2):
        monkeypatch.setattr(_threads, "_threads", threads)
        results.append(COMPILED["conv2d_grad_weight"](g, x, **attrs))
    np.testing.assert_array_equal(*results)


@pytest.mark.parametrize("x_shape, w_shape, stride, groups", [
    ((2, 2, 28, 28), (4, 2, 5, 5), (1, 1), 1),   # two input channels
    ((2, 1, 28, 28), (4, 1, 5, 5), (2, 2), 1),   # strided
    ((2, 2, 28, 28), (4, 1, 5, 5), (1, 1), 2),   # grouped
    ((2, 1, 6, 6), (4, 1, 3, 3), (1, 1), 1)])    # rows too short to pay
def test_other_weight_gradients_keep_the_tables_kernel(x_shape, w_shape, stride, groups,
                                                       loop_calls):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    oh, ow = ((x_shape[2 + i] - w_shape[2 + i]) // stride[i] + 1 for i in range(2))
    g = rng.standard_normal((x_shape[0], w_shape[0], oh, ow)).astype(np.float32)
    got = COMPILED["conv2d_grad_weight"](g, x, weight_shape=w_shape, stride=stride,
                                         padding=(0, 0), dilation=(1, 1), groups=groups)
    _, want = ref_conv_grads(g, x, w, stride, (0, 0), (1, 1), groups)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    assert loop_calls == Counter()


def _cross_entropy_case(shape, dtype, label_dtype=np.int32, seed=9):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    label = rng.integers(0, shape[1], shape[0]).astype(label_dtype)
    g = rng.standard_normal(shape[0]).astype(dtype)
    return x, label, g


def _cross_entropy_reference(x, label, g):
    """-log softmax(x)[label] per row and its gradient (softmax - onehot) * g, in float64."""
    x64 = x.astype(np.float64)
    shifted = x64 - x64.max(axis=1, keepdims=True)
    prob = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    rows = np.arange(len(label))
    loss = -np.log(prob[rows, label])
    grad = prob.copy()
    grad[rows, label] -= 1
    return loss, grad * g.astype(np.float64)[:, None]


@pytest.mark.parametrize("shape", [(64, 10), (5, 7), (3, compiled.MAX_CLASSES), (1, 1)])
@pytest.mark.parametrize("dtype, label_dtype", [(np.float32, np.int32), (np.float64, np.int64)])
def test_softmax_cross_entropy_against_float64(shape, dtype, label_dtype, loop_calls):
    x, label, g = _cross_entropy_case(shape, dtype, label_dtype)
    loss, grad = _cross_entropy_reference(x, label, g)
    got = COMPILED["softmax_cross_entropy"](x, label, axis=1)
    got_grad = COMPILED["softmax_cross_entropy_grad"](g, x, label, axis=1)
    assert got.dtype == np.dtype(dtype) and got.shape == (shape[0],)
    assert got_grad.dtype == np.dtype(dtype) and got_grad.shape == shape
    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12)
    np.testing.assert_allclose(got, loss, **tolerance)
    np.testing.assert_allclose(got_grad, grad, **tolerance)
    assert loop_calls == Counter(softmax_cross_entropy_rows=1, softmax_cross_entropy_grad_rows=1)


def test_a_broadcast_gradient_takes_the_loop(loop_calls):
    """A mean's gradient arrives as one value broadcast over the batch (stride 0)."""
    x, label, _ = _cross_entropy_case((8, 10), np.float32)
    g = np.broadcast_to(np.float32(0.125), (8,))
    _, grad = _cross_entropy_reference(x, label, np.full(8, 0.125))
    np.testing.assert_allclose(COMPILED["softmax_cross_entropy_grad"](g, x, label, axis=1), grad,
                               rtol=1e-5, atol=1e-7)
    assert loop_calls == Counter(softmax_cross_entropy_grad_rows=1)


def test_softmax_cross_entropy_of_nan_and_infinite_rows_is_nan_as_numpys():
    x = np.array([[0.0, np.nan, 1.0], [np.inf, 0.0, 1.0], [-np.inf, 0.0, 0.0]], np.float32)
    label = np.array([0, 1, 2], np.int32)
    g = np.ones(3, np.float32)
    for name, args in [("softmax_cross_entropy", (x, label)),
                       ("softmax_cross_entropy_grad", (g, x, label))]:
        with np.errstate(invalid="ignore"):  # NumPy's inf - inf
            got, want = COMPILED[name](*args, axis=1), NUMPY[name](*args, axis=1)
        np.testing.assert_array_equal(got, want, err_msg=name)
    # the -inf score has a probability of exactly 0, the two zeros 1/2 each
    assert np.isnan(got[:2]).all() and got[2, 0] == 0 and got[2, 2] == -0.5


@pytest.mark.parametrize("bad", [-1, 10])
def test_a_label_out_of_range_is_an_index_error_naming_it(bad):
    x, label, g = _cross_entropy_case((6, 10), np.float32)
    label[4] = bad
    with pytest.raises(IndexError, match=rf"softmax_cross_entropy: label {bad} \(row 4\) is "
                                         r"out of range; expected class indices in \[0, 10\)"):
        COMPILED["softmax_cross_entropy"](x, label, axis=1)
    with pytest.raises(IndexError, match=rf"softmax_cross_entropy_grad: label {bad} \(row 4\)"):
        COMPILED["softmax_cross_entropy_grad"](g, x, label, axis=1)


def test_mismatched_shapes_go_to_numpys_kernels_not_past_an_array(loop_calls):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError):  # NumPy's broadcasting refuses them; the loops would read on
        COMPILED["relu_grad"](np.ascontiguousarray(x[:, :2]), x)
    pooled = COMPILED["max_pool2d"](x, **TWO_BY_TWO)
    with pytest.raises(ValueError):
        COMPILED["max_pool2d_grad"](np.ascontiguousarray(pooled[:, :2]), x, pooled,
                                    **TWO_BY_TWO)
    assert loop_calls == Counter(max_pool_2x2=1)


def test_labels_or_gradients_of_another_length_are_refused_not_read_past(loop_calls):
    x, label, g = _cross_entropy_case((6, 10), np.float32)
    with pytest.raises(IndexError):  # NumPy's kernel: the loops would read past the labels
        COMPILED["softmax_cross_entropy"](x, label[:4], axis=1)
    with pytest.raises(ValueError):
        COMPILED["softmax_cross_entropy_grad"](g[:4], x, label, axis=1)
    assert loop_calls == Counter()


SGD_SETTINGS = [  # (momentum, nesterov, weight_decay)
    (0.0, False, 0.0), (0.0, False, 1e-2), (0.9, False, 5e-4), (0.9, True, 5e-4), (0.5, True, 0.0)]


def _sgd64(param, grad, velocity, lr, momentum, nesterov, weight_decay):
    """One SGD step in float64, written from its definition (PyTorch's documented update)."""
    step = grad + weight_decay * param
    if momentum:
        velocity = momentum * velocity + step
        step = step + momentum * velocity if nesterov else velocity
    return param - lr * step, velocity


@pytest.mark.parametrize("momentum, nesterov, weight_decay", SGD_SETTINGS)
@pytest.mark.parametrize("dtype, shape", [(np.float32, (16, 6, 5, 5)), (np.float64, (7,)),
                                          (np.float32, ())])
def test_sgd_update_matches_numpys_kernel_to_the_bit(momentum, nesterov, weight_decay, dtype,
                                                     shape, loop_calls):
    """Three steps in place, through the loop, against NumPy's kernel (the same roundings,
    so the same bits) and against float64 arithmetic from the definition."""
    rng = np.random.default_rng(12)
    param, grad, velocity = (np.asarray(rng.standard_normal(shape), dtype) for _ in range(3))
    settings = dict(lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    compiled_state = [param.copy(), velocity.copy()]
    numpy_state = [param.copy(), velocity.copy()]
    want = [param.astype(np.float64), velocity.astype(np.float64)]
    for _ in range(3):
        buffers = [compiled_state[1]] if momentum else []
        returned = COMPILED["sgd_update"](compiled_state[0], grad, *buffers, **settings)
        assert all(a is b for a, b in zip(returned, [compiled_state[0], *buffers]))
        NUMPY["sgd_update"](numpy_state[0], grad, *([numpy_state[1]] if momentum else []),
                            **settings)
        want = list(_sgd64(*want[:1], grad.astype(np.float64), want[1], **settings))
    np.testing.assert_array_equal(compiled_state[0], numpy_state[0])
    np.testing.assert_array_equal(compiled_state[1], numpy_state[1])
    np.testing.assert_allclose(compiled_state[0], want[0], rtol=1e-5, atol=1e-6)
    if momentum:
        np.testing.assert_allclose(compiled_state[1], want[1], rtol=1e-5, atol=1e-6)
    assert loop_calls == Counter({"sgd_momentum_step" if momentum else "sgd_step": 3})


def test_other_sgd_updates_keep_numpys_kernel(loop_calls):
    """Mixed dtypes, float16, strided or read-only arrays and a broadcast gradient are not
    the loop's: NumPy's kernel updates them, or refuses them with its own error."""
    rng = np.random.default_rng(13)
    settings = dict(lr=0.5, momentum=0.9, nesterov=False, weight_decay=0.0)
    base = rng.standard_normal((4, 6)).astype(np.float32)
    for param, grad in [(base.copy(), base.astype(np.float64)),
                        (base.astype(np.float16), base.astype(np.float16)),
                        (base.copy(), np.asfortranarray(base)),
                        (base.copy()[:, ::2], base[:, ::2]),
                        (base.copy(), np.broadcast_to(base[:1], base.shape))]:
        velocity = np.zeros_like(param)
        expected = param - 0.5 * grad.astype(param.dtype)  # the first step from zero velocity
        COMPILED["sgd_update"](param, grad, velocity, **settings)
        np.testing.assert_allclose(param, expected, rtol=1e-3)
    frozen = base.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        COMPILED["sgd_update"](frozen, base, np.zeros_like(base), **settings)
    assert loop_calls == Counter()


@pytest.mark.parametrize("shape, axis, label_dtype", [
    ((4, compiled.MAX_CLASSES + 1), 1, np.int32),  # NumPy's vectorised exp wins
    ((10, 4), 0, np.int32),                         # classes on axis 0
    ((4, 10, 3), 1, np.int32),                      # 3-D scores
    ((4, 10), 1, np.int16)])                        # a label dtype the loops do not take
def test_other_cross_entropies_keep_numpys_kernels(shape, axis, label_dtype, loop_calls):
    rng = np.random.default_rng(10)
    x = rng.standard_normal(shape).astype(np.float32)
    label_shape = shape[:axis] + shape[axis + 1:]
    label = rng.integers(0, shape[axis], label_shape).astype(label_dtype)
    g = rng.standard_normal(label_shape).astype(np.float32)
    index = np.expand_dims(label.astype(np.intp), axis)
    x64 = x.astype(np.float64)
    log_prob = x64 - np.log(np.exp(x64).sum(axis=axis, keepdims=True))
    want = -np.take_along_axis(log_prob, index, axis).squeeze(axis)
    np.testing.assert_allclose(COMPILED["softmax_cross_entropy"](x, label, axis=axis), want,
                               rtol=1e-5)
    onehot = np.zeros_like(x64)
    np.put_along_axis(onehot, index, 1.0, axis)
    np.testing.assert_allclose(
        COMPILED["softmax_cross_entropy_grad"](g, x, label, axis=axis),
        (np.exp(log_prob) - onehot) * np.expand_dims(g, axis), rtol=1e-5, atol=1e-7)
    assert loop_calls == Counter()


def test_each_loop_run_as_plain_python_gives_the_compiled_results():
    """Each loop's source run uncompiled (numba's ``py_func``) agrees with its machine code:
    NumPy scalars compute what the compiled loop computes, in another order for the sums."""
    module = compiled.loops()
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 2, 6, 4)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    rows, grow = x.reshape(3, 2, 24), g.reshape(3, 2, 24)
    c1, c2, c3 = (rng.standard_normal(2).astype(np.float32) for _ in range(3))

    def both(name, *args, outputs=()):
        """The loop's results (returned, then written into ``outputs``), compiled and not."""
        results = []
        for loop in (getattr(module, name), getattr(module, name).py_func):
            copies = [np.zeros_like(o) for o in outputs]
            returned = loop(*args, *copies)
            if isinstance(returned, (int, np.integer)):  # a row index, or -1
                returned = (returned,)
            results.append(list(returned or ()) + copies)
        return results

    for name, args, outputs in [
            ("bn_mean_squares", (rows,), ()), ("bn_centred_dot_sum", (grow, rows, c1), ()),
            ("bn_affine", (rows, c1, c2), (rows,)),
            ("bn_affine2", (grow, rows, c1, c2, c3), (rows,)),
            ("relu", (x.reshape(-1),), (x.reshape(-1),)),
            ("relu_grad", (g.reshape(-1), np.maximum(x, 0).reshape(-1)), (x.reshape(-1),))]:
        fast, slow = both(name, *args, outputs=outputs)
        for a, b in zip(fast, slow):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)
    pooled = np.empty((3, 2, 3, 2), np.float32)
    fast, slow = both("max_pool_2x2", x, outputs=(pooled,))
    np.testing.assert_array_equal(fast[0], slow[0])
    g_pooled = rng.standard_normal(pooled.shape).astype(np.float32)
    fast, slow = both("max_pool_2x2_grad", g_pooled, x, fast[0], outputs=(x,))
    np.testing.assert_array_equal(fast[0], slow[0])
    scores, label = x.reshape(18, 8), np.arange(18, dtype=np.int32) % 8
    for name, args, outputs in [
            ("softmax_cross_entropy_rows", (scores, label), (scores[:, 0].copy(),)),
            ("softmax_cross_entropy_grad_rows", (g.reshape(18, 8)[:, 0].copy(), scores, label),
             (scores,))]:
        (fast_row, fast_out), (slow_row, slow_out) = both(name, *args, outputs=outputs)
        assert fast_row == slow_row == -1
        np.testing.assert_allclose(fast_out, slow_out, rtol=1e-6, err_msg=name)
    param, grad, velocity = x.reshape(-1), g.reshape(-1), np.maximum(x, 0).reshape(-1)
    for name, state, settings in [("sgd_step", (), (0.1, 1e-2)),
                                  ("sgd_momentum_step", (velocity,), (0.1, 0.9, True, 1e-2))]:
        results = []
        for loop in (getattr(module, name), getattr(module, name).py_func):
            arrays = [param.copy(), *(a.copy() for a in state)]  # written in place
            loop(arrays[0], grad, *arrays[1:], *settings)
            results.append(arrays)
        for a, b in zip(*results):
            np.testing.assert_array_equal(a, b, err_msg=name)
    offsets = np.array([0, 1, 4], np.int64)
    fast, slow = both("conv_grad_weight_rows", grow[:, :, :16], rows[:, :1], offsets,
                      outputs=(np.zeros((2, 1, 3)),))
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-5)


def _run(code: str, **env: str) -> list[str]:
    done = python(code, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


PROBE = """
import sys
import numpy as np
import plugrad as P
import plugrad.functional as F
from plugrad.core import plugins, registry
x = P.tensor(np.ones((64, 64), np.float32))  # 4 K elements: compiled ReLU
(x + x).numpy()
before = "numba" in sys.modules
F.relu(x).numpy()
table = registry.dispatch_table(plugins.device_types()["cpu"])
print(before, "numba" in sys.modules, table["relu"].__module__.rsplit(".", 1)[-1])
"""


def test_the_backend_imports_numba_at_the_first_compiled_kernel():
    before, after, module = _run(PROBE)
    assert (before, after, module) == ("False", "True", "compiled")


def test_plugrad_numba_0_keeps_numpys_kernels():
    before, after, module = _run(PROBE, PLUGRAD_NUMBA="0")
    assert (before, after) == ("False", "False") and module == "kernels"


def test_without_a_writable_cache_directory_the_loops_compile_in_each_process(tmp_path):
    """numba refuses ``cache=True`` where it can write nowhere; the loops then compile anyway."""
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    out = _run(PROBE, NUMBA_CACHE_LOCATOR_CLASSES="UserProvidedCacheLocator",
               NUMBA_CACHE_DIR=str(blocked / "cache"))  # under a file: never creatable
    assert out == ["False", "True", "compiled"]


@pytest.mark.parametrize("setting, line", [
    (None, "batch norm, ReLU, 2x2 max pooling, one-channel conv weight gradients, softmax "
           "cross-entropy, SGD updates (cpu, float32/float64): numba's compiled loops "
           "(PLUGRAD_NUMBA=0: NumPy's)"),
    ("0", "batch norm, ReLU, max pooling (cpu): NumPy's (PLUGRAD_NUMBA=0)")])
def test_plugrad_info_says_which_kernels_run(setting, line):
    done = plugrad("info", cwd=ROOT, env={compiled.VARIABLE: setting} if setting else None)
    assert done.returncode == 0, done.stderr
    assert line in done.stdout.splitlines()
