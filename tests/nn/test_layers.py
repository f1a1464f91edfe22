"""Every layer against a NumPy float64 reference, and the errors bad inputs give."""
import math

import numpy as np
import pytest

import plugrad as P
import plugrad.module as M
from tests.helpers.numerics import ref_conv2d, ref_conv_transpose2d, ref_pool

RNG = np.random.default_rng(5)


def r(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def f64(t):
    return t.numpy().astype(np.float64)


def close(got, want, tol=1e-5):
    np.testing.assert_allclose(got.numpy(), want, rtol=tol, atol=tol)


def test_linear_layer():
    layer = M.Linear(4, 3)
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,)
    x = r(2, 5, 4)
    close(layer(P.Tensor(x)), x @ f64(layer.weight).T + f64(layer.bias))
    assert M.Linear(4, 3, bias=False).bias is None


def test_conv2d_layer_shapes_and_values():
    layer = M.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2)
    assert layer.weight.shape == (2, 3, 2, 3, 2) and layer.bias.shape == (1, 6, 1, 1)
    layer.bias._set_data(r(1, 6, 1, 1))
    x = r(2, 4, 7, 8)
    want = ref_conv2d(x.astype(np.float64), f64(layer.weight).reshape(6, 2, 3, 2), (2, 2),
                      (1, 1), (1, 2), 2) + f64(layer.bias)
    close(layer(P.Tensor(x)), want)


def test_conv_transpose2d_layer():
    layer = M.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1)
    assert layer.weight.shape == (2, 3, 3, 3) and layer.bias.shape == (1, 3, 1, 1)
    x = r(1, 2, 4, 4)
    out = layer(P.Tensor(x))
    assert out.shape == (1, 3, 8, 8)
    close(out, ref_conv_transpose2d(x.astype(np.float64), f64(layer.weight), (2, 2), (1, 1),
                                    (1, 1)) + f64(layer.bias))
    grouped = M.ConvTranspose2d(4, 6, 2, groups=2)
    assert grouped.weight.shape == (2, 2, 3, 2, 2)
    assert grouped(P.Tensor(r(1, 4, 3, 3))).shape == (1, 6, 4, 4)


def test_pooling_layers():
    x = r(2, 3, 7, 6)
    x64 = x.astype(np.float64)
    close(M.MaxPool2d(3, 2, 1)(P.Tensor(x)),
          ref_pool(x64, (3, 3), (2, 2), (1, 1), lambda v, k: v.max()))
    close(M.AvgPool2d(2)(P.Tensor(x)), ref_pool(x64, (2, 2), (2, 2), (0, 0),
                                                lambda v, k: v.mean()))
    close(M.AvgPool2d(3, 1, 1, mode="average")(P.Tensor(x)),
          ref_pool(x64, (3, 3), (1, 1), (1, 1), lambda v, k: v.sum() / k))
    close(M.AdaptiveAvgPool2d((1, 1))(P.Tensor(x)), x64.mean(axis=(2, 3), keepdims=True))
    close(M.AdaptiveMaxPool2d(1)(P.Tensor(x)), x64.max(axis=(2, 3), keepdims=True))


def test_batchnorm2d_train_eval_and_freeze():
    bn = M.BatchNorm2d(3, momentum=0.8)
    assert bn.weight.shape == (1, 3, 1, 1)
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var"]
    x = r(8, 3, 4, 4) * 3 + 2
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(0, 2, 3), keepdims=True)
    var = x64.var(axis=(0, 2, 3), keepdims=True)
    close(bn(P.Tensor(x)), (x64 - mean) / np.sqrt(var + 1e-5), 1e-4)
    n = 8 * 4 * 4
    close(bn.running_mean, 0.2 * mean)
    close(bn.running_var, 0.8 + 0.2 * var * n / (n - 1), 1e-4)
    bn.eval()
    running_mean, running_var = f64(bn.running_mean), f64(bn.running_var)
    close(bn(P.Tensor(x)), (x64 - running_mean) / np.sqrt(running_var + 1e-5), 1e-4)
    np.testing.assert_array_equal(f64(bn.running_mean), running_mean)  # eval: no update
    frozen = M.BatchNorm2d(3, freeze=True)
    close(frozen(P.Tensor(x)), x64 / np.sqrt(1 + 1e-5), 1e-4)  # running stats, even training
    np.testing.assert_array_equal(frozen.running_mean.numpy(), 0)


def test_batchnorm1d_accepts_2d_and_3d():
    bn = M.BatchNorm1d(4, affine=False)
    assert bn.weight is None
    x = r(10, 4)
    close(bn(P.Tensor(x)), (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), 1e-4)
    assert bn(P.Tensor(r(3, 4, 5))).shape == (3, 4, 5)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(4.*\(N, 4\) or \(N, 4, L\).*\(3, 5\)"):
        bn(P.Tensor(r(3, 5)))


def test_activation_and_structural_layers():
    x = r(3, 5) * 3
    x64 = x.astype(np.float64)
    close(M.ReLU()(P.Tensor(x)), np.maximum(x64, 0))
    close(M.LeakyReLU(0.1)(P.Tensor(x)), np.where(x64 > 0, x64, 0.1 * x64))
    close(M.Sigmoid()(P.Tensor(x)), 1 / (1 + np.exp(-x64)))
    gelu = np.vectorize(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))))(x64)
    close(M.GELU()(P.Tensor(x)), gelu)
    e = np.exp(x64 - x64.max(1, keepdims=True))
    close(M.Softmax(axis=1)(P.Tensor(x)), e / e.sum(1, keepdims=True))
    t = P.Tensor(x)
    assert M.Identity()(t) is t
    assert M.Flatten()(P.Tensor(r(2, 3, 4, 5))).shape == (2, 60)


def test_dropout_layer_train_and_eval():
    layer = M.Dropout(0.5)
    x = P.Tensor(np.ones((50, 50), np.float32))
    out = layer(x).numpy()
    assert set(np.unique(out)) == {0.0, 2.0}
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), 1.0)


def test_embedding_layer():
    layer = M.Embedding(10, 4)
    index = np.array([[1, 2], [9, 1]], dtype=np.int32)
    np.testing.assert_array_equal(layer(P.Tensor(index)).numpy(), layer.weight.numpy()[index])
    table = r(5, 2)
    frozen = M.Embedding.from_pretrained(table)
    np.testing.assert_array_equal(frozen(P.Tensor(np.array([4]))).numpy(), table[[4]])


def test_lenet_shapes_and_parameter_count():
    net = M.LeNet()
    out = net(P.Tensor(r(3, 1, 32, 32)))
    assert out.shape == (3, 10) and out.dtype == np.float32
    sizes = {n: p.shape for n, p in net.named_parameters()}
    assert sizes["conv1.weight"] == (6, 1, 5, 5) and sizes["conv2.bias"] == (1, 16, 1, 1)
    assert sizes["fc1.weight"] == (120, 400) and sizes["classifier.weight"] == (10, 84)
    assert sum(p.size for p in net.parameters()) == 61706


# -- bad input: the error names the layer, the shape and what was expected -----------------
def test_conv_channel_mismatch_names_layer_and_shapes():
    net = M.LeNet()
    with pytest.raises(ValueError) as info:
        net(P.Tensor(r(2, 3, 32, 32)))
    message = str(info.value)
    assert "Conv2d(1, 6, kernel_size=(5, 5)) 'conv1'" in message
    assert "(2, 3, 32, 32)" in message and "expected 1 input channels" in message


def test_conv_wrong_rank_names_layer_and_suggests_a_batch_axis():
    with pytest.raises(ValueError, match=r"Conv2d\(1, 6.*4-D input \(N, 1, H, W\).*"
                                         r"\(1, 32, 32\).*expand_dims"):
        M.Conv2d(1, 6, 5)(P.Tensor(r(1, 32, 32)))


def test_linear_wrong_rank_names_layer_and_suggests_flatten():
    net = M.LeNet()
    with pytest.raises(ValueError) as info:
        net.fc1(P.Tensor(r(4, 16, 5, 5)))
    message = str(info.value)
    assert "Linear(in_features=400, out_features=120, bias=True) 'fc1'" in message
    assert "(..., 400)" in message and "(4, 16, 5, 5)" in message and "flatten" in message


def test_functional_conv_channel_mismatch_mentions_both_shapes():
    import plugrad.functional as F

    with pytest.raises(ValueError, match=r"conv2d: the input has 3 channels \(shape "
                                         r"\(1, 3, 8, 8\)\) but the weight of shape "
                                         r"\(4, 2, 3, 3\).*expects 2"):
        F.conv2d(P.Tensor(r(1, 3, 8, 8)), P.Tensor(r(4, 2, 3, 3)))


def _bn64(x, weight, bias, eps=1e-5):
    """Training-mode batch norm in float64: (output, batch mean, biased batch variance)."""
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias, mean, var


def test_a_training_step_computes_each_batch_norm_layers_statistics_once():
    """The forward, the running statistics and the backward share one batch_norm_stats call
    per layer (counted at the kernel table), and the step still matches float64: loss,
    updated parameters (gradients by central differences) and running statistics."""
    from plugrad.conformance.spy import KernelSpy

    bn1, bn2 = M.BatchNorm2d(3, momentum=0.9), M.BatchNorm2d(3, momentum=0.9)
    model = M.Sequential(bn1, M.ReLU(), bn2)
    start = {name: r(1, 3, 1, 1) * 0.5 + (1.0 if "weight" in name else 0.0)
             for name in ("0.weight", "0.bias", "2.weight", "2.bias")}
    model.load_state_dict({**model.state_dict(), **start})
    x, cotangent = r(6, 3, 4, 5) * 2 + 1, r(6, 3, 4, 5)
    gm = P.autodiff.GradManager().attach(model.parameters())
    opt = P.optimizer.SGD(model.parameters(), lr=0.1)
    data = P.Tensor(x)
    with KernelSpy(data._device) as spy:
        with gm:
            loss = (model(data) * P.Tensor(cotangent)).sum()
            gm.backward(loss)
        opt.step()
    assert spy.calls["batch_norm_stats"] == 2, spy.calls  # 4 when the backward recomputed them
    assert spy.calls["batch_norm"] == 2 and spy.calls["batch_norm_grad_params"] == 2

    x64, c64 = x.astype(np.float64), cotangent.astype(np.float64)

    def forward(p):
        hidden, mean1, var1 = _bn64(x64, p["0.weight"], p["0.bias"])
        out, mean2, var2 = _bn64(np.maximum(hidden, 0), p["2.weight"], p["2.bias"])
        return float(np.sum(out * c64)), (mean1, var1, mean2, var2)

    params = {name: value.astype(np.float64) for name, value in start.items()}
    want_loss, (mean1, var1, mean2, var2) = forward(params)
    np.testing.assert_allclose(float(loss.numpy()), want_loss, rtol=1e-4, atol=1e-4)
    step = 1e-6
    trained = dict(model.named_parameters())
    for name, value in params.items():
        grad = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            up, down = ({**params, name: value.copy()} for _ in range(2))
            up[name][i] += step
            down[name][i] -= step
            grad[i] = (forward(up)[0] - forward(down)[0]) / (2 * step)
        close(trained[name], value - 0.1 * grad, 1e-4)
    n = 6 * 4 * 5
    for bn, mean, var in ((bn1, mean1, var1), (bn2, mean2, var2)):
        close(bn.running_mean, 0.1 * mean)
        close(bn.running_var, 0.9 + 0.1 * var * n / (n - 1), 1e-4)
