"""GradManager's public contract where the mutation check found it untested: several outputs
with their own dy (Tensors, arrays, numbers), repeated attach with callbacks, the callback's
arguments, ops recorded after the loss, two managers over one tensor, and every misuse error.
Gradients are hand-derived."""
import numpy as np
import pytest

import plugrad as P
from plugrad.autodiff import GradManager

F = P.functional


def test_backward_of_several_outputs_uses_each_output_s_dy():
    w = P.Tensor([1.0, 2.0])
    gm = GradManager().attach([w])
    with gm:
        a, b, c = w * 3.0, w * w, (w * 5.0).sum()
        gm.backward([a, b, c], [P.Tensor([1.0, 10.0]), np.array([2.0, 3.0]), 0.5])
    # 3 * dy_a + 2w * dy_b + 5 * dy_c
    np.testing.assert_allclose(w.grad.numpy(), [3 + 4 + 2.5, 30 + 12 + 2.5])
    assert w.grad.dtype == np.float32


def test_an_array_dy_takes_the_output_s_dtype():
    w = P.Tensor([1.0, 2.0], dtype="float64")
    gm = GradManager().attach([w])
    with gm:
        gm.backward(w * 2.0, np.array([1, 3], dtype=np.int64))
    assert w.grad.dtype == np.float64
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 6.0])


def test_ops_recorded_after_the_loss_do_not_stop_its_gradient():
    w = P.Tensor([1.0, 2.0])
    gm = GradManager().attach([w])
    with gm:
        loss = (w * 2.0).sum()
        unused = w * 7.0  # recorded after the loss; no gradient reaches it
        gm.backward(loss)
    assert unused.shape == (2,)
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0])


def test_callbacks_from_two_attach_calls_both_run_in_order_on_the_tensor():
    w = P.Tensor([1.0, 2.0])
    seen = []

    def double(tensor, grad):
        seen.append(("double", tensor is w))
        return grad * 2.0

    def plus_one(tensor, grad):
        seen.append(("plus_one", tensor is w))
        return grad + 1.0

    gm = GradManager().attach([w], callbacks=double).attach(w, callbacks=[plus_one])
    attached = gm.attached_tensors()
    assert len(attached) == 1 and attached[0] is w
    with gm:
        gm.backward((w * 3.0).sum())
    assert seen == [("double", True), ("plus_one", True)]
    np.testing.assert_array_equal(w.grad.numpy(), [7.0, 7.0])


def test_two_managers_recording_one_tensor_each_get_their_own_backward():
    w = P.Tensor([1.0, 2.0])
    first, second = GradManager().attach([w]), GradManager().attach([w])
    first.record()
    second.record()
    y = (w * w).sum()
    first.backward(y)
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 4.0])
    second.backward(y)  # the tape survived the first backward: the second still records
    np.testing.assert_array_equal(w.grad.numpy(), [4.0, 8.0])


def test_a_released_manager_cannot_backward_while_another_records():
    w = P.Tensor([1.0, 2.0])
    gm = GradManager().attach([w])
    with gm:
        gm.backward((w * 2.0).sum())
    later = GradManager().attach([P.Tensor([0.0])])
    with later:
        with pytest.raises(RuntimeError, match="no recording in progress"):
            gm.backward((w * 2.0).sum())
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0])


def test_misuse_gets_a_clear_error():
    w = P.Tensor([1.0, 2.0])
    gm = GradManager().attach([w])
    with pytest.raises(RuntimeError, match=r"^GradManager\.backward: no recording in progress; "
                                           r"call backward inside 'with gm:' or after gm\.record"):
        gm.backward(w)
    with pytest.raises(TypeError, match=r"^GradManager\.attach: expected Tensors, got list at "
                                        r"position 1$"):
        GradManager().attach([w, [1.0]])
    with gm:
        with pytest.raises(RuntimeError, match=r"^GradManager\.record: this GradManager is "
                                               r"already recording$"):
            gm.record()
        with pytest.raises(ValueError, match=r"^GradManager\.backward: y is required"):
            gm.backward()
    with gm:
        with pytest.raises(ValueError, match=r"^GradManager\.backward: got 2 tensors but 1 "
                                             r"gradients$"):
            gm.backward([w * 1.0, w * 2.0], [P.Tensor([1.0, 1.0])])
    with gm:
        with pytest.raises(ValueError, match=r"^GradManager\.backward: dy\[0\] has shape \(3,\) "
                                             r"but y\[0\] has shape \(2,\)$"):
            gm.backward(w * 1.0, np.ones(3))
