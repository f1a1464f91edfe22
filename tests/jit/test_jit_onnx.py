"""trace.dump writes ONNX that onnxruntime runs to plugrad's own logits, on real MNIST images."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import plugrad as P
import plugrad.data as data
import plugrad.data.transform as T
import plugrad.functional as F
import plugrad.module as M
import plugrad.optimizer as optim
from plugrad.autodiff import GradManager
from plugrad.data.dataset import MNIST
from plugrad.jit import trace

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from data_test_helpers import NO_MNIST, real_mnist  # noqa: E402

REAL_MNIST = Path(real_mnist() or "no-mnist")
needs_mnist = pytest.mark.skipif(real_mnist() is None, reason=NO_MNIST)
TRANSFORM = T.Compose([T.Normalize(0.1307 * 255, 0.3081 * 255), T.Pad(2), T.ToMode("CHW")])


class ConvBN(M.Module):
    """A conv net with batch norm, exported in eval mode (running statistics as constants)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = M.Conv2d(1, 8, 5), M.BatchNorm2d(8)
        self.conv2, self.bn2 = M.Conv2d(8, 16, 5, padding=2), M.BatchNorm2d(16)
        self.pool, self.avg = M.MaxPool2d(2, 2), M.AvgPool2d(2, 2)
        self.fc = M.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = self.pool(F.leaky_relu(self.bn1(self.conv1(x)), 0.1))
        x = self.avg(F.gelu(self.bn2(self.conv2(x))))
        return self.fc(F.flatten(x, 1))


def _train(model: M.Module, batches: int | None, seed: int = 1) -> float:
    """The quick-start's training loop over real MNIST, its step traced; returns seconds."""
    np.random.seed(seed)
    P.random.seed(seed)
    train = MNIST(str(REAL_MNIST), train=True)
    loader = data.DataLoader(train, data.RandomSampler(train, batch_size=64), TRANSFORM)
    gm = GradManager().attach(model.parameters())
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    @trace(symbolic=True)
    def train_step(x, y):
        with gm:
            loss = F.nn.cross_entropy(model(x), y)
            gm.backward(loss)
            opt.step().clear_grad()
        return loss

    model.train()
    start = time.perf_counter()
    for i, (images, labels) in enumerate(loader):
        if batches is not None and i == batches:
            break
        train_step(P.Tensor(images), P.Tensor(labels))
    model.eval()
    return time.perf_counter() - start


def _test_images(count: int = 256) -> tuple[np.ndarray, np.ndarray]:
    test = MNIST(str(REAL_MNIST), train=False)
    loader = data.DataLoader(test, data.SequentialSampler(test, batch_size=count), TRANSFORM)
    images, labels = next(iter(loader))
    return np.ascontiguousarray(images, dtype=np.float32), np.asarray(labels)


def _dump_and_run(model: M.Module, images: np.ndarray, path: Path) -> tuple:
    """(plugrad's eager logits, onnxruntime's logits, the loaded ONNX model)."""
    expected = model(P.Tensor(images)).numpy()

    @trace(symbolic=True, capture_as_const=True)
    def infer(x):
        return model(x)

    infer(P.Tensor(images))
    infer.dump(str(path), arg_names=["data"], output_names=["logits"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"data": images})
    return expected, got, onnx.load(str(path))


@needs_mnist
def test_lenet_trained_one_epoch_runs_in_onnxruntime_with_plugrads_logits(tmp_path):
    P.random.seed(1)
    model = M.LeNet()
    _train(model, batches=None)  # one epoch: 938 traced steps
    images, labels = _test_images()
    expected, got, exported = _dump_and_run(model, images, tmp_path / "lenet.onnx")
    assert got.shape == (256, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))
    assert (expected.argmax(1) == labels).mean() > 0.95  # a trained model, not a random one
    assert exported.opset_import[0].version >= 17
    onnx.checker.check_model(exported, full_check=True)
    assert [i.name for i in exported.graph.input] == ["data"]
    assert [o.name for o in exported.graph.output] == ["logits"]
    ops = {node.op_type for node in exported.graph.node}
    assert {"Conv", "MaxPool", "Relu", "Gemm", "Reshape"} <= ops


@needs_mnist
def test_conv_net_with_batch_norm_in_eval_mode_matches_in_onnxruntime(tmp_path):
    P.random.seed(2)
    model = ConvBN()
    _train(model, batches=60)
    running = model.bn1.running_mean.numpy()
    assert not np.allclose(running, 0)  # eval mode normalises with trained statistics
    images, _ = _test_images()
    expected, got, _ = _dump_and_run(model, images, tmp_path / "convbn.onnx")
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


def test_common_inference_ops_export(tmp_path):
    P.random.seed(0)
    weight = P.Parameter(np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32))

    @trace(capture_as_const=True)
    def head(x):
        h = F.concat([x, F.exp(x) - 1.0], axis=1) / 2.0
        h = F.sigmoid(h[:, :4]) + F.tanh(h[:, 2:6]).transpose(1, 0).reshape(3, 4)
        z = F.matmul(h, weight.transpose(1, 0))
        return F.softmax(z, axis=1), F.logsoftmax(z.max(axis=1, keepdims=True) + z, axis=0), \
            F.argmax(z, axis=1), z.mean(axis=0) * F.sqrt(F.abs(z)).sum()

    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    expected = [t.numpy() for t in head(P.Tensor(x))]
    head.dump(str(tmp_path / "head.onnx"))
    session = ort.InferenceSession(str(tmp_path / "head.onnx"),
                                   providers=["CPUExecutionProvider"])
    got = session.run(None, {"arg_0": x})
    assert [o.name for o in session.get_outputs()] == [f"output_{i}" for i in range(4)]
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: M.ConvTranspose2d(3, 6, 3, stride=3, padding=1, output_padding=1),
    lambda: M.ConvTranspose2d(3, 6, 3, stride=2, groups=3, dilation=2),
    lambda: M.AdaptiveAvgPool2d(2), lambda: M.AdaptiveMaxPool2d((3, 2)),
    lambda: M.Sequential(M.Dropout(0.5), M.GELU(), M.LeakyReLU(0.1), M.Softmax()),
], ids=["conv_transpose", "conv_transpose_groups", "adaptive_avg", "adaptive_max", "activations"])
def test_layers_export_in_eval_mode(tmp_path, make):
    P.random.seed(0)
    layer = make()
    layer.eval()

    @trace(symbolic=True, capture_as_const=True)
    def infer(x):
        return layer(x)

    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    expected = infer(P.Tensor(x)).numpy()
    infer.dump(str(tmp_path / "layer.onnx"))
    session = ort.InferenceSession(str(tmp_path / "layer.onnx"),
                                   providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"arg_0": x})
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_an_embedding_exports_as_gather(tmp_path):
    P.random.seed(0)
    embedding, fc = M.Embedding(20, 6), M.Linear(6, 2)

    @trace(symbolic=True, capture_as_const=True)
    def classify(ids):
        return fc(F.relu(embedding(ids))).sum(axis=1)

    ids = np.array([[1, 19, 3], [0, 0, 7]], np.int32)
    expected = classify(P.Tensor(ids)).numpy()
    classify.dump(str(tmp_path / "emb.onnx"), arg_names=["ids"])
    session = ort.InferenceSession(str(tmp_path / "emb.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"ids": ids})
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_an_op_without_onnx_mapping_names_the_op_and_the_layer(tmp_path):
    class Wrap(M.Module):
        def forward(self, x):
            return x % 3.0

    class Net(M.Module):
        def __init__(self):
            super().__init__()
            self.fc = M.Linear(4, 4)
            self.wrap = Wrap()

        def forward(self, x):
            return self.wrap(self.fc(x))

    net = Net()

    @trace(capture_as_const=True)
    def infer(x):
        return net(x)

    infer(P.Tensor(np.ones((2, 4), np.float32)))
    with pytest.raises(NotImplementedError, match=r"op 'mod' \(called by Net\.wrap \(Wrap\)\)"):
        infer.dump(str(tmp_path / "net.onnx"))


def test_dump_needs_capture_as_const_and_a_traced_call(tmp_path):
    @trace
    def plain(x):
        return x + 1.0

    plain(P.Tensor([1.0]))
    with pytest.raises(ValueError, match="capture_as_const=True"):
        plain.dump(str(tmp_path / "m.onnx"))

    @trace(capture_as_const=True)
    def untraced(x):
        return x + 1.0

    with pytest.raises(ValueError, match="has not been traced yet"):
        untraced.dump(str(tmp_path / "m.onnx"))
    untraced(P.Tensor([1.0]))
    with pytest.raises(ValueError, match="arg_names must be 1 distinct names"):
        untraced.dump(str(tmp_path / "m.onnx"), arg_names=["a", "b"])
    with pytest.raises(TypeError, match="keep_opr_name"):
        untraced.dump(str(tmp_path / "m.onnx"), keep_opr_name=True)


def test_export_command_writes_an_onnx_model_of_a_checkpoint(tmp_path):
    P.random.seed(4)
    model = M.LeNet()
    P.save({"model": model.state_dict()}, str(tmp_path / "lenet.pgd"))
    out = tmp_path / "lenet.onnx"
    result = subprocess.run([sys.executable, "-m", "plugrad", "export", str(tmp_path / "lenet.pgd"),
                             str(out), "--batch-size", "3"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    model.eval()
    images = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"data": images})
    np.testing.assert_allclose(got, model(P.Tensor(images)).numpy(), rtol=0, atol=1e-5)


def test_export_command_explains_a_missing_checkpoint(tmp_path):
    result = subprocess.run([sys.executable, "-m", "plugrad", "export", str(tmp_path / "no.pgd"),
                             str(tmp_path / "m.onnx")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert "no.pgd does not exist" in result.stderr and "plugrad train" in result.stderr
