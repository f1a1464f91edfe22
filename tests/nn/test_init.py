"""Initialisers: fans, gains, and the statistics of what they draw (large samples, tolerances
of several standard errors)."""
import math

import numpy as np
import pytest

import plugrad as P
import plugrad.module as M
from plugrad.nn import init


def tensor(*shape):
    return P.Parameter(np.zeros(shape, np.float32))


def test_fill_zeros_ones_keep_the_object():
    t = tensor(3, 4)
    init.fill_(t, 2.5)
    np.testing.assert_array_equal(t.numpy(), 2.5)
    init.ones_(t)
    np.testing.assert_array_equal(t.numpy(), 1)
    init.zeros_(t)
    np.testing.assert_array_equal(t.numpy(), 0)
    assert t.dtype == np.float32


def test_fans_for_linear_conv_and_grouped_conv():
    assert init.calculate_fan_in_and_fan_out(tensor(120, 400)) == (400, 120)
    assert init.calculate_fan_in_and_fan_out(tensor(16, 6, 5, 5)) == (150, 400)
    assert init.calculate_fan_in_and_fan_out(tensor(2, 8, 3, 3, 3)) == (27, 72)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.calculate_fan_in_and_fan_out(tensor(5))


def test_gains():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


def _stats(t):
    values = t.numpy().astype(np.float64).ravel()
    return values.mean(), values.std(), values.min(), values.max()


def test_uniform_and_normal():
    P.random.seed(0)
    t = tensor(400, 500)  # 200k samples: standard error of the mean ~0.002 * scale
    init.uniform_(t, -2, 4)
    mean, std, low, high = _stats(t)
    assert -2 <= low and high < 4
    assert mean == pytest.approx(1, abs=0.02) and std == pytest.approx(6 / math.sqrt(12),
                                                                       rel=0.01)
    init.normal_(t, 3, 0.5)
    mean, std, _, _ = _stats(t)
    assert mean == pytest.approx(3, abs=0.01) and std == pytest.approx(0.5, rel=0.01)


@pytest.mark.parametrize("shape", [(300, 700), (64, 32, 5, 5)])
def test_xavier_and_msra_statistics(shape):
    P.random.seed(1)
    t = tensor(*shape)
    fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
    init.xavier_uniform_(t, gain=2.0)
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    _, std, low, high = _stats(t)
    assert -bound <= low and high <= bound and std == pytest.approx(bound / math.sqrt(3),
                                                                    rel=0.02)
    init.xavier_normal_(t)
    assert _stats(t)[1] == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.02)
    init.msra_uniform_(t, a=math.sqrt(5))
    gain = math.sqrt(2 / 6)
    bound = math.sqrt(3) * gain / math.sqrt(fan_in)
    _, std, low, high = _stats(t)
    assert -bound <= low and high <= bound and std == pytest.approx(bound / math.sqrt(3),
                                                                    rel=0.02)
    init.msra_normal_(t, mode="fan_out", nonlinearity="relu")
    assert _stats(t)[1] == pytest.approx(math.sqrt(2) / math.sqrt(fan_out), rel=0.02)


def test_layers_default_to_megengine_initialisation():
    P.random.seed(2)
    conv = M.Conv2d(32, 64, 5)
    _, std, _, _ = _stats(conv.weight)
    assert std == pytest.approx(math.sqrt(1 / (32 * 25)), rel=0.03)
    np.testing.assert_array_equal(conv.bias.numpy(), 0)
    linear = M.Linear(500, 300)
    assert _stats(linear.weight)[1] == pytest.approx(math.sqrt(1 / 500), rel=0.02)
    np.testing.assert_array_equal(linear.bias.numpy(), 0)
    grouped = M.Conv2d(32, 64, 3, groups=4)  # MegEngine's fan-in counts all input channels
    assert _stats(grouped.weight)[1] == pytest.approx(math.sqrt(1 / (32 * 9)), rel=0.05)


def test_seed_makes_initialisation_reproducible():
    P.random.seed(42)
    a = M.LeNet().state_dict()
    P.random.seed(42)
    b = M.LeNet().state_dict()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
