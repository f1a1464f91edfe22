"""The cupy backend on a real GPU: devices, transfers, memory, kernels against the CPU, training.

Skipped unless CuPy sees a CUDA device. Run on a machine with an NVIDIA GPU after
``pip install -e ".[test,cuda]"`` (see docs/gpu.md)::

    python -m pytest tests/test_cupy_gpu.py -v

Every comparison is against the CPU backend on the same inputs, so a difference points at a GPU
kernel (or at the generic kernel under CuPy), not at the reference.
"""
from __future__ import annotations

import gc
import importlib.util
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

import plugrad
import plugrad.functional as F
from plugrad import Parameter, Tensor
from plugrad.autodiff import GradManager
from plugrad.backends.cupy_backend import plugin as cupy_plugin
from plugrad.backends.numpy_backend import conv, pool
from plugrad.core import device as devices
from plugrad.core import plugins

cupy = pytest.importorskip("cupy", reason="cupy is not installed (pip install plugrad[cuda])")


def _gpu_count() -> int:
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


GPUS = _gpu_count()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(GPUS == 0, reason="CuPy sees no CUDA device")]

ROOT = Path(__file__).resolve().parents[1]
DTYPES = cupy_plugin.DTYPES


@pytest.fixture(scope="module", autouse=True)
def gpu_backend():
    """The gpu device type, registered by hand if plugrad was installed without its entry point."""
    if "gpu" not in plugins.device_types():
        record = plugins.register_plugin(cupy_plugin, name="cupy")
        assert record.status == "loaded", record.reason
    assert plugrad.is_cuda_available(), devices._probe(plugins.device_types()["gpu"])
    yield plugins.device_types()["gpu"]


def _tables():
    gpu, cpu = (devices.get_device(name).kernels for name in ("gpu0", "cpu0"))
    return gpu, cpu


def _host(array) -> np.ndarray:
    return cupy.asnumpy(array) if isinstance(array, cupy.ndarray) else np.asarray(array)


def _close(gpu_out, cpu_out, dtype, rtol=None, atol=None) -> None:
    dtype = np.dtype(dtype)
    expected = np.asarray(cpu_out)
    actual = _host(gpu_out)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    if dtype.kind != "f":
        np.testing.assert_array_equal(actual, expected)
        return
    eps = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                               rtol=rtol if rtol is not None else 64 * eps,
                               atol=atol if atol is not None else 64 * eps)


# -- devices and transfers --------------------------------------------------------------------
def test_xpux_and_gpux_resolve_to_the_first_gpu():
    assert devices.what_is_xpu() == "gpu"
    for spec, logical in [("xpux", "xpux:0"), ("gpux", "gpux:0"), ("gpu0", "gpu0:0")]:
        t = Tensor([1.0, 2.0], device=spec)
        assert str(t.device) == logical and t.device.physical == "gpu0"
        assert isinstance(t._data, cupy.ndarray) and t._data.device.id == 0
    assert str(Tensor([1.0]).device) == "xpux:0"  # the default device


@pytest.mark.parametrize("dtype", DTYPES)
def test_to_moves_data_between_cpu_and_gpu(dtype):
    host = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    cpu = Tensor(host, dtype=dtype, device="cpu0")
    gpu = cpu.to("gpu0")
    assert gpu.device.physical == "gpu0" and isinstance(gpu._data, cupy.ndarray)
    back = gpu.to("cpu0")
    assert back.device.physical == "cpu0" and back.dtype == cpu.dtype
    np.testing.assert_array_equal(back.numpy(), host)
    np.testing.assert_array_equal(gpu.numpy(), host)


def test_tensors_accept_cupy_arrays_and_print_like_cpu_tensors():
    t = Tensor(cupy.arange(3, dtype=cupy.float32) * 2, device="gpu0")
    np.testing.assert_array_equal(t.numpy(), [0.0, 2.0, 4.0])
    assert repr(t) == "Tensor([0. 2. 4.], device=gpu0:0)"
    assert repr(Tensor([1, 2], device="gpu0")) == "Tensor([1 2], dtype=int32, device=gpu0:0)"
    assert ((t * 0.5 + 1) == Tensor([1.0, 2.0, 3.0], device="gpu0")).numpy().all()
    assert float(t.sum()) == 6.0 and t.max().item() == 4.0


def test_ops_across_devices_fail_and_name_both():
    with pytest.raises(RuntimeError, match=r"add: inputs are on different devices: .*cpu0.*gpu0"
                                           r".*Tensor\.to"):
        Tensor([1.0], device="cpu0") + Tensor([1.0], device="gpu0")


def test_gpu_memory_returns_to_the_pool_when_tensors_die():
    """Dead tensors give their blocks back to CuPy's pool; free_all_blocks returns them to CUDA."""
    pool = cupy.get_default_memory_pool()
    gc.collect()
    cupy.cuda.Device(0).synchronize()
    base = pool.used_bytes()
    t = F.zeros((1024, 1024), device="gpu0")  # 4 MiB
    u = t + 1
    assert pool.used_bytes() >= base + 2 * 4 * 2**20
    del t, u
    gc.collect()
    assert pool.used_bytes() == base
    assert pool.total_bytes() >= base + 4 * 2**20  # kept by the pool for reuse...
    pool.free_all_blocks()
    assert pool.total_bytes() == pool.used_bytes()  # ...until handed back


def test_a_training_loop_holds_no_memory_between_steps():
    rng = np.random.default_rng(0)
    w = Parameter(rng.standard_normal((256, 64)).astype("float32"), device="gpu0")
    x = Tensor(rng.standard_normal((128, 256)).astype("float32"), device="gpu0")
    label = Tensor(rng.integers(0, 64, 128), device="gpu0")
    gm = GradManager().attach([w])
    pool = cupy.get_default_memory_pool()
    used = []
    for _ in range(6):
        with gm:
            loss = F.nn.cross_entropy(F.relu(x @ w), label)
            gm.backward(loss)
        w._set_data((w - w.grad * 0.1)._data)
        w.grad = None
        del loss
        gc.collect()
        used.append(pool.used_bytes())
    assert used[2:] == [used[2]] * 4, used


# -- kernels against the CPU backend ----------------------------------------------------------
FLOATS = ["float16", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_index_add_with_duplicates_matches_numpy_add_at(dtype):
    gpu, cpu = _tables()
    rng = np.random.default_rng(1)
    x = (rng.integers(0, 3, (5, 4)) > 0).astype(dtype) if dtype == "bool" else \
        rng.integers(0, 100, (5, 4)).astype(dtype)
    value = np.ones((6, 4), dtype) if dtype == "bool" else \
        rng.integers(0, 100, (6, 4)).astype(dtype)
    index = (np.array([0, 2, 2, 4, 0, 2]),)
    expected = cpu["index_add"](x, value, index=index)
    actual = gpu["index_add"](cupy.asarray(x), cupy.asarray(value),
                              index=(cupy.asarray(index[0]),))
    _close(actual, expected, dtype, rtol=1e-3 if dtype == "float16" else None)


@pytest.mark.parametrize("dtype", ["int8", "int32", "float32", "float64"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_scatter_add_and_gather_match_the_cpu(dtype, axis):
    gpu, cpu = _tables()
    rng = np.random.default_rng(2)
    x = rng.integers(-5, 5, (4, 5, 6)).astype(dtype)
    index = rng.integers(0, x.shape[axis], (4, 5, 6)).astype("int32")
    value = rng.integers(-5, 5, (4, 5, 6)).astype(dtype)
    expected = cpu["scatter_add"](x, index, value, axis=axis)
    actual = gpu["scatter_add"](cupy.asarray(x), cupy.asarray(index), cupy.asarray(value),
                                axis=axis)
    _close(actual, expected, dtype)
    _close(gpu["gather"](cupy.asarray(x), cupy.asarray(index), axis=axis),
           cpu["gather"](x, index, axis=axis), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_sigmoid_and_relu_grad_match_the_cpu(dtype):
    gpu, cpu = _tables()
    x = np.concatenate([np.linspace(-20, 20, 101), [-1e4, 0, 1e4]]).astype(dtype)
    half = dict(rtol=2e-3, atol=2e-3) if dtype == "float16" else {}
    _close(gpu["sigmoid"](cupy.asarray(x)), cpu["sigmoid"](x), dtype, **half)
    if "relu_grad" in gpu:
        g = np.linspace(-3, 3, x.size).astype(dtype)
        _close(gpu["relu_grad"](cupy.asarray(g), cupy.asarray(x)), cpu["relu_grad"](g, x), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape, axis", [((64, 10), 1), ((3, 300, 5), 1), ((7, 4), 0),
                                         ((2, 3, 129), 2), ((0, 4), 1)])
def test_softmax_family_matches_the_cpu(dtype, shape, axis):
    gpu, cpu = _tables()
    x = (np.random.default_rng(3).standard_normal(shape) * 10).astype(dtype)
    tol = dict(rtol=5e-3, atol=5e-3) if dtype == "float16" else {}
    for name in ("softmax", "logsoftmax"):
        _close(gpu[name](cupy.asarray(x), axis=axis), cpu[name](x, axis=axis), dtype, **tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("classes", [10, 1000])
def test_softmax_cross_entropy_and_its_gradient_match_the_cpu(dtype, classes):
    gpu, cpu = _tables()
    if "softmax_cross_entropy" not in gpu:
        pytest.skip("this plugrad declares no softmax_cross_entropy op")
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((256, classes)) * 5).astype(dtype)
    label = rng.integers(0, classes, 256).astype("int32")
    g = rng.standard_normal(256).astype(dtype)
    _close(gpu["softmax_cross_entropy"](cupy.asarray(x), cupy.asarray(label), axis=1),
           cpu["softmax_cross_entropy"](x, label, axis=1), dtype)
    _close(gpu["softmax_cross_entropy_grad"](cupy.asarray(g), cupy.asarray(x),
                                             cupy.asarray(label), axis=1),
           cpu["softmax_cross_entropy_grad"](g, x, label, axis=1), dtype)


def test_dropout_equals_its_decomposition_on_the_gpu():
    gpu, _ = _tables()
    if "dropout" not in gpu:
        pytest.skip("this plugrad declares no dropout op")
    x = cupy.asarray(np.random.default_rng(5).standard_normal((64, 100)).astype("float32"))
    out = gpu["dropout"](x, drop_prob=0.25, seed=1234)
    unit = gpu["uniform"](shape=x.shape, dtype=np.dtype("float32"), seed=1234)
    expected = cupy.where(unit >= np.float32(0.25), x * np.float32(1 / 0.75), 0)
    np.testing.assert_array_equal(cupy.asnumpy(out), cupy.asnumpy(expected))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_draws_are_reproducible_and_distributed(dtype):
    plugrad.random.seed(11)
    a = plugrad.random.normal(size=(200_000,), device="gpu0").numpy()
    u = plugrad.random.uniform(size=(200_000,), device="gpu0").numpy()
    plugrad.random.seed(11)
    np.testing.assert_array_equal(plugrad.random.normal(size=(200_000,), device="gpu0").numpy(),
                                  a)
    assert abs(a.mean()) < 0.01 and abs(a.std() - 1) < 0.01
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.005
    gpu, _ = _tables()
    draw = gpu["normal"](shape=(1000,), dtype=np.dtype(dtype), seed=5)
    assert draw.dtype == np.dtype(dtype) and float(draw.std()) == pytest.approx(1, abs=0.1)
    half = gpu["uniform"](shape=(100_000,), dtype=np.dtype("float16"), seed=5)
    assert half.dtype == np.float16 and float(half.max()) < 1.0


LENET_CONV = [((64, 1, 32, 32), (6, 1, 5, 5)), ((64, 6, 14, 14), (16, 6, 5, 5)),
              ((8, 4, 9, 9), (6, 2, 3, 3))]


@pytest.mark.parametrize("x_shape, w_shape", LENET_CONV)
def test_conv_and_pool_kernels_match_the_cpu(x_shape, w_shape):
    rng = np.random.default_rng(6)
    gpu_conv, cpu_conv = conv.kernels(cupy), conv.kernels(np)
    gpu_pool, cpu_pool = pool.kernels(cupy), pool.kernels(np)
    groups = x_shape[1] // w_shape[1]
    attrs = dict(stride=(1, 1), padding=(1, 1) if groups > 1 else (0, 0), dilation=(1, 1),
                 groups=groups)
    x = rng.standard_normal(x_shape).astype("float32")
    w = rng.standard_normal(w_shape).astype("float32")
    y = cpu_conv["conv2d"](x, w, **attrs)
    gx, gw = cupy.asarray(x), cupy.asarray(w)
    _close(gpu_conv["conv2d"](gx, gw, **attrs), y, "float32", rtol=1e-4, atol=1e-4)
    g = rng.standard_normal(y.shape).astype("float32")
    _close(gpu_conv["conv2d_grad_input"](cupy.asarray(g), gw, input_shape=x.shape, **attrs),
           cpu_conv["conv2d_grad_input"](g, w, input_shape=x.shape, **attrs), "float32",
           rtol=1e-4, atol=1e-3)
    _close(gpu_conv["conv2d_grad_weight"](cupy.asarray(g), gx, weight_shape=w.shape, **attrs),
           cpu_conv["conv2d_grad_weight"](g, x, weight_shape=w.shape, **attrs), "float32",
           rtol=1e-4, atol=1e-2)
    window = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))
    pooled = cpu_pool["max_pool2d"](y, **window)
    _close(gpu_pool["max_pool2d"](cupy.asarray(y), **window), pooled, "float32")
    gp = rng.standard_normal(pooled.shape).astype("float32")
    _close(gpu_pool["max_pool2d_grad"](cupy.asarray(gp), cupy.asarray(y), cupy.asarray(pooled),
                                       **window),
           cpu_pool["max_pool2d_grad"](gp, y, pooled, **window), "float32")


def test_functional_graph_and_gradients_match_the_cpu():
    """A graph through indexing, reductions, matmul and activations, forward and backward."""
    rng = np.random.default_rng(7)
    data = {name: rng.standard_normal(shape).astype("float32") for name, shape in
            [("x", (16, 8)), ("w", (8, 5)), ("b", (5,))]}
    index = np.array([0, 3, 3, 7, 15, 0])
    label = rng.integers(0, 5, 16)

    def run(device):
        x, w, b = (Parameter(data[k], device=device) for k in ("x", "w", "b"))
        gm = GradManager().attach([x, w, b])
        with gm:
            h = F.sigmoid(x @ w + b) * 2 - F.relu(x[index] @ w).mean()
            picked = F.gather(F.logsoftmax(h, axis=1), 1, Tensor(label[:, None], device=device))
            loss = -picked.mean() + F.logsumexp(h, axis=0).sum() * 0.01 + (h[h > 0.5] ** 2).sum()
            gm.backward(loss)
        return [loss.numpy()] + [t.grad.numpy() for t in (x, w, b)]

    for gpu_value, cpu_value in zip(run("gpu0"), run("cpu0")):
        np.testing.assert_allclose(gpu_value, cpu_value, rtol=1e-4, atol=1e-5)


# -- several GPUs -----------------------------------------------------------------------------
@pytest.mark.skipif(GPUS < 2, reason="needs two GPUs")
def test_everything_on_gpu1_stays_on_gpu1():
    x = Tensor(np.arange(6, dtype="float32").reshape(2, 3), device="gpu1")
    results = [x, x * 2 + 1, (x @ x.T).sum(axis=1), F.zeros((3,), device="gpu1"),
               plugrad.random.normal(size=(4,), device="gpu1"), Tensor(x), x[x > 2],
               F.softmax(x, axis=1)]
    assert [r._data.device.id for r in results] == [1] * len(results)
    moved = x.to("gpu0")
    assert moved._data.device.id == 0 and moved.device.physical == "gpu0"
    np.testing.assert_array_equal(moved.numpy(), x.numpy())
    with pytest.raises(RuntimeError, match="gpu0.*gpu1|gpu1.*gpu0"):
        moved + x


# -- the conformance suite and LeNet ----------------------------------------------------------
def test_the_conformance_suite_passes_on_the_gpu():
    if importlib.util.find_spec("plugrad.conformance") is None:
        pytest.skip("the conformance suite (plugrad.conformance) is not in this checkout")
    backend = ["--backend", "cupy"]
    if not any(ep.name == "cupy" for ep in entry_points(group="plugrad.backends")):
        module = "plugrad.backends.cupy_backend.plugin"  # installed without the entry point
        backend = ["--plugin", module, "--backend", module]
    done = subprocess.run([sys.executable, "-m", "plugrad.conformance", *backend,
                           "--device", "gpu0"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-4000:]


def _lenet_module():
    try:
        import plugrad.module as M
    except ImportError:
        pytest.skip("plugrad.module (the nn layers) is not in this checkout")
    if not all(hasattr(M, name) for name in ("Module", "Conv2d", "Linear", "MaxPool2d", "ReLU")):
        pytest.skip("plugrad.module lacks the layers LeNet needs")
    return M


def make_lenet(M):
    """The quick-start tutorial's LeNet (plugrad.nn.LeNet is that architecture)."""
    from plugrad.nn import LeNet

    return LeNet()


def _train(M, device: str, state, batches) -> list[float]:
    import plugrad.optimizer as optim

    with plugrad.using_device(device):
        model = make_lenet(M)
        model.load_state_dict(state)
        gm = GradManager().attach(model.parameters())
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        losses = []
        for data, label in batches:
            with gm:
                loss = F.nn.cross_entropy(model(Tensor(data)), Tensor(label))
                gm.backward(loss)
                opt.step().clear_grad()
            losses.append(loss.item())
    return losses


def test_lenet_trains_on_xpux_like_on_the_cpu():
    M = _lenet_module()
    plugrad.random.seed(0)
    with plugrad.using_device("cpu0"):
        state = make_lenet(M).state_dict()
    rng = np.random.default_rng(8)
    # One batch seen eight times: the loss must fall, whatever the data.
    batch = (rng.standard_normal((64, 1, 32, 32)).astype("float32"),
             rng.integers(0, 10, 64).astype("int32"))
    batches = [batch] * 8
    gpu_losses = _train(M, "xpux", state, batches)
    cpu_losses = _train(M, "cpu0", state, batches)
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=2e-3)
    assert gpu_losses[-1] < gpu_losses[0]
