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


def test_conv1d_padding_modes_pad_with_mirrored_or_repeated_ends():
    x = Tensor([[[1.0, 2.0, 4.0]]])
    for mode, padded in (("reflect", [2.0, 1.0, 2.0, 4.0, 2.0]),
                         ("replicate", [1.0, 1.0, 2.0, 4.0, 4.0])):
        conv = M.Conv1d(1, 1, 2, padding=1, bias=False, padding_mode=mode)
        conv.weight._set_data(np.array([[[1.0, -1.0]]], np.float32))
        expected = [a - b for a, b in zip(padded, padded[1:])]
        assert conv(x).numpy().reshape(-1).tolist() == expected, mode
    assert M.Conv1d(1, 1, 2).padding_mode == "zeros"


def test_conv1d_initialisation_is_megengines():
    conv = M.Conv1d(8, 16, 5)  # weight ~ N(0, 1 / (k * in_channels)) = N(0, 1 / 40)
    w = conv.weight.numpy().astype(np.float64)
    assert abs(w.std() - np.sqrt(1 / 40)) < 0.15 * np.sqrt(1 / 40) and abs(w.mean()) < 0.02
    assert (conv.bias.numpy() == 0).all() and conv.bias.shape == (1, 16, 1)
    assert repr(conv) == "Conv1d(8, 16, kernel_size=5)"
    assert repr(M.Conv1d(2, 4, 3, stride=2, groups=2, bias=False)) \
        == "Conv1d(2, 4, kernel_size=3, stride=2, groups=2, bias=False)"


def test_pad_reflect_and_replicate_match_megengines_example():
    x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert F.pad(x, ((1, 1), (1, 2)), mode="reflect").numpy().tolist() == [
        [5, 4, 5, 6, 5, 4], [2, 1, 2, 3, 2, 1], [5, 4, 5, 6, 5, 4], [2, 1, 2, 3, 2, 1]]
    assert F.pad(x, ((1, 1), (1, 2)), mode="replicate").numpy().tolist() == [
        [1, 1, 2, 3, 3, 3], [1, 1, 2, 3, 3, 3], [4, 4, 5, 6, 6, 6], [4, 4, 5, 6, 6, 6]]
    # a short pad_width pads the leading axes only
    assert F.pad(x, ((1, 0),), constant_value=9).numpy().tolist() == [
        [9, 9, 9], [1, 2, 3], [4, 5, 6]]


def test_pad_gradient_sums_onto_the_copied_positions():
    from plugrad import Parameter
    from plugrad.autodiff import GradManager

    x = Parameter([1.0, 2.0, 3.0])
    gm = GradManager().attach([x])
    with gm:  # reflect (2, 1) reads positions 2, 1, 0, 1, 2, 1
        gm.backward(F.pad(x, ((2, 1),), mode="reflect"),
                    Tensor([1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0]))
    assert x.grad.numpy().tolist() == [100.0, 101010.0, 10001.0]


def test_norm_layers_require_affine_in_the_functions_and_reset():
    x = Tensor(np.arange(6, dtype=np.float32).reshape(1, 2, 3))
    with pytest.raises(TypeError):
        F.nn.layer_norm(x, (3,))  # affine has no default, as in MegEngine
    with pytest.raises(TypeError):
        F.nn.group_norm(x, 2)
    gn = M.GroupNorm(1, 2)
    gn.weight._set_data(np.full(2, 5.0, np.float32))
    gn.reset_parameters()
    assert gn.weight.numpy().tolist() == [1.0, 1.0] and gn.bias.numpy().tolist() == [0.0, 0.0]
    assert repr(gn) == "GroupNorm(groups=1, channels=2, eps=1e-05, affine=True)"
    assert M.LayerNorm(3, affine=False).weight is None


def test_prelu_slopes_are_shaped_as_megengines():
    layer = M.PReLU(2, init=0.5)
    assert layer.weight.shape == (1, 2, 1, 1) and M.PReLU().weight.shape == (1,)
    x = Tensor(np.array([[[[-2.0]], [[-4.0]]]], np.float32))
    layer.weight._set_data(np.array([0.5, 0.25], np.float32).reshape(1, 2, 1, 1))
    assert layer(x).numpy().reshape(-1).tolist() == [-1.0, -1.0]
    # MegEngine's docstring example
    out = M.PReLU()(Tensor([-1.2, -3.7, 2.7])).numpy()
    assert np.allclose(out, [-0.3, -0.925, 2.7])
    # F.nn.prelu broadcasts its second argument like any elementwise op
    assert F.nn.prelu(Tensor([[-2.0, 2.0], [-4.0, 4.0]]), Tensor([[0.5], [0.25]])) \
        .numpy().tolist() == [[-1.0, 2.0], [-1.0, 4.0]]


def test_interpolate_bilinear_and_nearest_by_hand():
    x = Tensor([[[[0.0, 4.0]]]])
    # half-pixel centres: source positions -0.25 (clamped to 0), 0.25, 0.75, 1.25 -> 1 (clamped)
    assert F.nn.interpolate(x, size=(1, 4)).numpy().reshape(-1).tolist() == [0.0, 1.0, 3.0, 4.0]
    corners = F.nn.interpolate(x, size=(1, 3), align_corners=True)
    assert corners.numpy().reshape(-1).tolist() == [0.0, 2.0, 4.0]
    near = F.nn.interpolate(Tensor([[[[1.0, 2.0, 3.0]]]]), scale_factor=(1, 2), mode="nearest")
    assert near.numpy().reshape(-1).tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    line = F.nn.interpolate(Tensor([[[0.0, 4.0]]]), 4, mode="linear")
    assert line.shape == (1, 1, 4) and line.numpy().reshape(-1).tolist() == [0.0, 1.0, 3.0, 4.0]


def test_interpolate_megengine_docstring_example():
    x = Tensor(np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2))
    out = F.vision.interpolate(x, [4, 4], align_corners=False)
    assert out.numpy().reshape(4, 4).tolist() == [
        [1.0, 1.25, 1.75, 2.0], [1.5, 1.75, 2.25, 2.5],
        [2.5, 2.75, 3.25, 3.5], [3.0, 3.25, 3.75, 4.0]]
    assert F.vision.interpolate(x, scale_factor=2.0).numpy().tolist() == out.numpy().tolist()


def test_nearest_and_scale_factor_round_in_float32_as_megengine():
    # 2 / 14 is 0.14285715 in float32, a little above 1 / 7, so output 1 reads 1 / that =
    # 6.9999995 -> input 6 (exact arithmetic would say 7)
    x = Tensor(np.arange(14, dtype=np.float32).reshape(1, 1, 1, 14))
    picked = F.nn.interpolate(x, size=(1, 2), mode="nearest").numpy().reshape(-1)
    assert picked.tolist() == [0.0, 6.0]
    # 100 * 0.29 is 28.999999999999996, which float32 rounds to 29 before the floor
    wide = Tensor(np.zeros((1, 1, 1, 100), np.float32))
    assert F.nn.interpolate(wide, scale_factor=(1, 0.29)).shape == (1, 1, 1, 29)


def _keys(d: float) -> float:
    """Keys' cubic convolution kernel with a = -0.75."""
    a, d = -0.75, abs(d)
    if d <= 1:
        return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1
    return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a if d < 2 else 0.0


def test_bicubic_by_hand_and_against_keys_kernel():
    # halving a step: outputs sit at 0.5, 2.5, 4.5, 6.5, midway between inputs, where the
    # four taps weigh W(1.5), W(0.5), W(0.5), W(1.5) = -0.09375, 0.59375, 0.59375, -0.09375
    step = Tensor(np.array([0, 0, 0, 0, 8, 8, 8, 8], np.float32).reshape(1, 1, 1, 8))
    out = F.nn.interpolate(step, size=(1, 4), mode="BICUBIC").numpy().reshape(-1)
    assert out.tolist() == [0.0, -0.75, 8.75, 8.0]  # the cubic over- and undershoot
    ramp = np.arange(8, dtype=np.float64) ** 2
    x = Tensor(ramp.reshape(1, 1, 1, 8).astype(np.float32))
    out = F.nn.interpolate(x, size=(1, 16), mode="bicubic").numpy().reshape(-1)
    expected = []
    for p in (np.arange(16) + 0.5) / 2 - 0.5:  # taps beyond the border read the border value
        base = int(np.floor(p))
        expected.append(sum(_keys(p - j) * ramp[min(max(j, 0), 7)]
                            for j in range(base - 1, base + 3)))
    assert np.allclose(out, expected, atol=1e-4)


def test_trilinear_resizes_three_axes_of_a_5d_input():
    x = Tensor(np.arange(8, dtype=np.float32).reshape(1, 1, 2, 2, 2))
    out = F.nn.interpolate(x, size=(3, 3, 3), mode="trilinear", align_corners=True)
    # corners kept, centres the mean of the cube: value = 4 d + 2 h + w on a half grid
    grid = np.arange(3) * 0.5
    expected = 4 * grid[:, None, None] + 2 * grid[None, :, None] + grid[None, None, :]
    assert np.allclose(out.numpy().reshape(3, 3, 3), expected, atol=1e-6)


def test_hinge_loss_megengine_example():
    pred = Tensor([[0.5, -0.5, 0.1], [-0.6, 0.7, 0.8]])
    label = Tensor([[1, -1, -1], [-1, 1, 1]])
    assert F.nn.hinge_loss(pred, label).item() == pytest.approx(1.5)
    assert np.allclose(F.nn.hinge_loss(pred, label, reduction="none").numpy(), [2.1, 0.9])
    assert F.nn.hinge_loss(pred, label, reduction="sum").item() == pytest.approx(3.0)


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
     ["prelu", "(2,)", "(2, 3)", "(1, C, 1, 1)"]),
    (lambda: M.PReLU(3)(Tensor(np.ones((2, 3)))), ValueError, ["PReLU", "(N, 3, H, W)", "(2, 3)"]),
    (lambda: M.Conv1d(1, 1, 2, padding_mode="circular"), ValueError,
     ["Conv1d", "padding_mode", "reflect", "'circular'"]),
    (lambda: F.pad(Tensor([1.0, 2.0]), ((2, 0),), mode="reflect"), ValueError,
     ["pad", "reflect", "(2, 0)", "smaller than the axis (2)"]),
    (lambda: F.pad(Tensor([1.0]), ((1, 0),), mode="wrap"), ValueError, ["pad", "'wrap'"]),
    (lambda: F.nn.interpolate(Tensor(np.ones((1, 1, 2, 2))), size=3, mode="area"),
     ValueError, ["interpolate", "'area'", "bicubic", "trilinear"]),
    (lambda: F.nn.interpolate(Tensor(np.ones((1, 1, 2, 2))), size=(3, 3), mode="nearest",
                              align_corners=False),
     ValueError, ["interpolate", "align_corners", "None"]),
    (lambda: F.nn.interpolate(Tensor(np.ones((1, 1, 2, 2))), size=3), ValueError,
     ["interpolate", "2 ints", "(3, 3)"]),
    (lambda: F.nn.interpolate(Tensor(np.ones((1, 1, 2))), size=(3, 3), mode="linear"),
     ValueError, ["interpolate", "linear", "single int"]),
    (lambda: F.nn.interpolate(Tensor(np.ones((1, 2, 2))), size=3), ValueError,
     ["interpolate", "(N, C, H, W)", "(1, 2, 2)"]),
    (lambda: F.nn.interpolate(Tensor(np.ones((1, 1, 2, 2))), size=(2, 2, 2), mode="trilinear"),
     ValueError, ["interpolate", "(N, C, D, H, W)", "(1, 1, 2, 2)"]),
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
