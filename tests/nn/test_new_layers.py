"""Conv1d, LayerNorm, GroupNorm, PReLU and the functions under them, against hand-computed
values; interpolate and hinge_loss; and their errors."""
from __future__ import annotations

import numpy as np
import pytest

import plugrad.functional as F
import plugrad.module as M
from plugrad import Tensor


def test_conv1d_layer_matches_a_hand_computed_correlation():
    conv = M.Conv1d(1, 1, 2, padding=1)
    assert conv.weight.shape == (1, 1, 2) and conv.bias.shape == (1, 1, 1)
    conv.weight._set_data(np.array([[[1.0, -1.0]]], np.float32))
    conv.bias._set_data(np.array([[[0.5]]], np.float32))
    out = conv(Tensor([[[1.0, 2.0, 4.0]]]))
    # padded [0, 1, 2, 4, 0]: pairs (0,1) (1,2) (2,4) (4,0) -> a - b + 0.5
    assert out.numpy().tolist() == [[[-0.5, -0.5, -1.5, 4.5]]]
    assert M.Conv1d(4, 6, 3, groups=2).weight.shape == (2, 3, 2, 3)


def test_layer_norm_and_group_norm_standardise_their_slices():
    x = Tensor([[1.0, 3.0], [2.0, 2.0]])
    ln = M.LayerNorm(2)
    expected = [[-1.0, 1.0], [0.0, 0.0]]  # eps makes 1 into 1 / sqrt(1 + 1e-5)
    assert np.allclose(ln(x).numpy(), expected, atol=1e-5)
    gn = M.GroupNorm(2, 4)
    y = Tensor(np.array([[[1.0], [3.0], [5.0], [5.0]]], np.float32))
    assert np.allclose(gn(y).numpy().reshape(-1), [-1.0, 1.0, 0.0, 0.0], atol=1e-5)
    assert ln.weight.shape == (2,) and gn.weight.shape == (4,) and gn.bias.shape == (4,)


def test_prelu_learns_one_slope_or_one_per_channel():
    layer = M.PReLU(2, init=0.5)
    x = Tensor(np.array([[[-2.0], [-4.0]]], np.float32))
    layer.weight._set_data(np.array([0.5, 0.25], np.float32))
    assert layer(x).numpy().reshape(-1).tolist() == [-1.0, -1.0]
    assert M.PReLU()(Tensor([-4.0, 1.0])).numpy().tolist() == [-1.0, 1.0]


def test_interpolate_bilinear_and_nearest_by_hand():
    x = Tensor([[[[0.0, 4.0]]]])
    # half-pixel centres: source positions -0.25 (clamped to 0), 0.25, 0.75, 1.25 -> 1 (clamped)
    assert F.nn.interpolate(x, size=(1, 4)).numpy().reshape(-1).tolist() == [0.0, 1.0, 3.0, 4.0]
    corners = F.nn.interpolate(x, size=(1, 3), align_corners=True)
    assert corners.numpy().reshape(-1).tolist() == [0.0, 2.0, 4.0]
    near = F.nn.interpolate(Tensor([[[1.0, 2.0, 3.0]]]), scale_factor=2, mode="nearest")
    assert near.numpy().reshape(-1).tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]


def test_hinge_loss_l1_and_l2():
    pred, label = Tensor([[0.5, -2.0], [2.0, 0.0]]), Tensor([[1.0, -1.0], [-1.0, 1.0]])
    # margins max(0, 1 - p y): [[0.5, 0], [3, 1]] -> per sample 0.5, 4 (L1); 0.25, 10 (L2)
    assert F.nn.hinge_loss(pred, label).item() == pytest.approx(2.25)
    assert F.nn.hinge_loss(pred, label, "L2", "none").numpy().tolist() == [0.25, 10.0]


@pytest.mark.parametrize("call, kind, words", [
    (lambda: F.conv1d(Tensor(np.ones((1, 2, 5))), Tensor(np.ones((1, 3, 2)))), ValueError,
     ["conv1d", "2 channels", "(1, 2, 5)", "(1, 3, 2)"]),
    (lambda: F.conv1d(Tensor(np.ones((2, 5))), Tensor(np.ones((1, 2, 2)))), ValueError,
     ["conv1d", "3-D", "(2, 5)"]),
    (lambda: M.Conv1d(2, 3, 2)(Tensor(np.ones((1, 3, 4)))), ValueError, ["Conv1d", "(N, 2, L)"]),
    (lambda: M.LayerNorm(3)(Tensor(np.ones((2, 4)))), ValueError,
     ["layer_norm", "(3,)", "(2, 4)"]),
    (lambda: M.GroupNorm(3, 4), ValueError, ["GroupNorm", "divisible"]),
    (lambda: F.nn.group_norm(Tensor(np.ones((1, 4, 2))), 3, affine=False), ValueError,
     ["group_norm", "4 channels", "3 groups"]),
    (lambda: F.nn.prelu(Tensor(np.ones((2, 3))), Tensor([1.0, 2.0])), ValueError,
     ["prelu", "(2,)", "(2, 3)"]),
    (lambda: F.nn.interpolate(Tensor(np.ones((1, 1, 2, 2))), size=3, mode="bicubic"),
     ValueError, ["interpolate", "bicubic", "bilinear"]),
    (lambda: F.nn.interpolate(Tensor(np.ones((1, 2, 2))), size=3), ValueError,
     ["interpolate", "(N, C, H, W)", "(1, 2, 2)"]),
    (lambda: F.nn.interpolate(Tensor(np.ones((1, 1, 2, 2))), size=3, scale_factor=2),
     ValueError, ["interpolate", "exactly one"]),
    (lambda: F.nn.hinge_loss(Tensor([[1.0]]), Tensor([[1.0]]), norm="L3"), ValueError,
     ["hinge_loss", "L1", "L2"]),
    (lambda: F.nn.hinge_loss(Tensor([[1.0]]), Tensor([[1.0, 2.0]])), ValueError,
     ["hinge_loss", "(1, 1)", "(1, 2)"]),
])
def test_bad_input_names_the_op_shapes_and_what_is_allowed(call, kind, words):
    with pytest.raises(kind) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)
