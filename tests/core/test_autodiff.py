"""GradManager semantics and the tape's mechanics (per-op gradients are the conformance suite's)."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import plugrad.functional as F
from plugrad import Parameter, Tensor
from plugrad.autodiff import GradManager
from plugrad.core import tape


def test_seed_gradients_and_accumulation():
    w, x, b = Tensor(3.0), Tensor(2.0), Tensor(-1.0)
    gm = GradManager().attach([w, b])
    with gm:
        gm.backward(w * x + b)
    assert repr(w.grad) == "Tensor(2.0, device=xpux:0)"
    assert repr(b.grad) == "Tensor(1.0, device=xpux:0)"
    with gm:
        gm.backward(w * x + b)
    assert repr(w.grad) == "Tensor(4.0, device=xpux:0)"


def test_attach_returns_self_and_parameters_get_tensor_grads():
    w = Parameter([3.0])
    gm = GradManager()
    assert gm.attach(w) is gm
    with gm:
        gm.backward(F.mul(w, Tensor([2.0])) + Parameter(-1.0))
    assert type(w.grad) is Tensor and w.grad.tolist() == [2.0]


def test_backward_without_recording_is_an_error():
    w = Tensor(1.0)
    gm = GradManager().attach([w])
    with pytest.raises(RuntimeError, match="no recording"):
        gm.backward(w * 2)


def test_attaching_an_integer_tensor_is_an_error():
    with pytest.raises(TypeError, match=r"floating-point.*int32"):
        GradManager().attach([Tensor([1, 2])])


def test_nothing_is_recorded_outside_a_grad_manager():
    w = Parameter([1.0, 2.0])
    y = w * 2 + 1
    assert y._node is None and not tape.state.live_nodes


def test_tape_is_emptied_after_backward_and_memory_does_not_grow():
    w = Parameter(np.ones((8, 8), np.float32))
    gm = GradManager().attach([w])
    for _ in range(3):
        with gm:
            loss = ((w * 3) ** 2).sum()
            gm.backward(loss)
    assert not tape.state.live_nodes and not tape.state.recording
    assert loss._node is not None and loss._node.saved == ()  # emptied, holds no arrays
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(50):
        with gm:
            gm.backward(((w * 3) ** 2).sum())
        y = (w * 3) ** 2  # outside: no tape at all
    gc.collect()
    assert len(gc.get_objects()) - before < 50


def test_shared_subexpressions_and_broadcasting_accumulate_correctly():
    x_np = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    b_np = np.array([0.5, -1.0, 2.0])
    x, b = Tensor(x_np), Tensor(b_np)
    gm = GradManager().attach([x, b])
    with gm:
        h = x * b  # b broadcast over rows
        y = (h * h + h).sum()
        gm.backward(y)
    h_np = x_np * b_np
    np.testing.assert_allclose(x.grad.numpy(), (2 * h_np + 1) * b_np, rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), ((2 * h_np + 1) * x_np).sum(0), rtol=1e-6)


def test_dy_weights_the_output_and_is_shape_checked():
    x = Tensor([1.0, 2.0])
    gm = GradManager().attach(x)
    with gm:
        gm.backward(x * x, Tensor([1.0, 10.0]))
    assert x.grad.tolist() == [2.0, 40.0]
    with gm:
        with pytest.raises(ValueError, match="shape"):
            gm.backward(x * x, Tensor([1.0]))


def test_callbacks_transform_gradients_before_accumulation():
    x = Tensor([1.0, 2.0])
    gm = GradManager().attach([x], callbacks=[lambda t, g: g * 10])
    with gm:
        gm.backward((x * 3).sum())
    assert x.grad.tolist() == [30.0, 30.0]


def test_deferred_gradients_are_resolved_after_the_whole_pass():
    """A callback may return an object with get() (how make_allreduce_cb packs buckets)."""
    x, y = Tensor([1.0, 2.0]), Tensor([3.0])
    seen, resolved = [], []

    class Deferred:
        def __init__(self, grad):
            self.grad = grad

        def get(self):
            resolved.append(len(seen))  # only once every gradient has arrived
            return self.grad * 2

    def defer(t, g):
        seen.append(t)
        return Deferred(g)

    gm = GradManager().attach([x, y], callbacks=[defer])
    with gm:
        gm.backward((x * 3).sum() + (y * 5).sum())
    assert resolved == [2, 2]
    assert x.grad.tolist() == [6.0, 6.0] and y.grad.tolist() == [10.0]


def test_deep_chains_do_not_hit_the_recursion_limit():
    x = Tensor(1.0)
    gm = GradManager().attach(x)
    with gm:
        y = x
        for _ in range(3000):
            y = y * 1.0 + 0.0
        gm.backward(y)
    assert x.grad.item() == 1.0


def test_inplace_updates_while_recording_stay_differentiable():
    x = Tensor([1.0, 2.0])
    gm = GradManager().attach(x)
    with gm:
        y = x * 2
        y += x  # y = 3x
        y[0] = y[0] * 5  # y = [15 x0, 3 x1]
        gm.backward(y.sum())
    assert x.grad.tolist() == [15.0, 3.0]


def test_branches_without_attached_inputs_are_not_recorded():
    w = Tensor([1.0])
    c = Tensor([2.0])
    gm = GradManager().attach(w)
    with gm:
        constant = c * c
        assert constant._node is None
        gm.backward((w * constant).sum())
    assert w.grad.tolist() == [4.0]
    assert c.grad is None


def test_integer_results_carry_no_gradient():
    x = Tensor([1.5, 2.5])
    gm = GradManager().attach(x)
    with gm:
        idx = F.argmax(x)
        assert idx._node is None
        gm.backward((x * 2).sum())
    assert x.grad.tolist() == [2.0, 2.0]


def test_attaching_during_recording_tracks_from_then_on():
    a, b = Tensor(2.0), Tensor(3.0)
    gm = GradManager().attach(a)
    with gm:
        gm.attach(b)
        gm.backward(a * b)
    assert a.grad.item() == 3.0 and b.grad.item() == 2.0


def test_two_managers_each_fill_only_their_own_tensors():
    a, b = Tensor(2.0), Tensor(3.0)
    gm_a, gm_b = GradManager().attach(a), GradManager().attach(b)
    with gm_a, gm_b:
        y = a * b
        gm_a.backward(y)
    assert a.grad.item() == 3.0 and b.grad is None


def test_a_second_recording_manager_still_differentiates_after_the_first():
    # The first backward must leave the tape whole for the manager still recording.
    a, b = Tensor(2.0), Tensor(3.0)
    gm_a, gm_b = GradManager().attach(a), GradManager().attach(b)
    with gm_a, gm_b:
        y = F.relu(a * b)
        gm_a.backward(y)
        gm_b.backward(y)
    assert a.grad.item() == 3.0 and b.grad.item() == 2.0


def test_backward_returns_the_tapes_activations_as_it_goes():
    # By the time gradients reach the leaves, every node has run and let go of its arrays: an
    # activation nobody else holds is already freed (not only when the recording ends).
    import weakref

    w = Parameter(np.ones((2, 3), np.float32))
    seen = {}

    def check(tensor, grad):
        seen["alive"] = kept() is not None
        return grad

    gm = GradManager().attach([w], callbacks=check)
    with gm:
        hidden = F.relu(w * 2.0)  # relu's vjp keeps its output
        kept = weakref.ref(hidden._data)
        loss = (hidden * 3.0).sum()
        del hidden
        assert kept() is not None  # held by the tape until backward
        gm.backward(loss)
    assert seen == {"alive": False}
    np.testing.assert_array_equal(w.grad.numpy(), np.full((2, 3), 6.0, np.float32))


def test_the_tape_keeps_only_the_arrays_each_vjp_reads():
    # relu's vjp reads its output, add's and sum's only shapes: their other arrays are not held.
    w = Parameter(np.ones((3, 4), np.float32))
    x = Tensor(np.linspace(-2.5, 2.5, 12, dtype=np.float32).reshape(3, 4))
    gm = GradManager().attach([w])
    with gm:
        h = w + x
        r = F.relu(h)
        loss = r.sum()
        add_node, relu_node, sum_node = h._node, r._node, loss._node
        assert all(isinstance(a, tape.ArraySpec) for a in add_node.saved)
        assert add_node.out_data is None
        assert isinstance(relu_node.saved[0], tape.ArraySpec)
        assert relu_node.saved[0].shape == (3, 4) and relu_node.saved[0].dtype == np.float32
        assert relu_node.out_data is r._data
        assert isinstance(sum_node.saved[0], tape.ArraySpec) and sum_node.out_data is None
        gm.backward(loss)
    np.testing.assert_array_equal(w.grad.numpy(), (1 + x.numpy() > 0).astype(np.float32))
