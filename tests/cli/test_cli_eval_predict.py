"""``plugrad eval`` and ``plugrad predict`` on a LeNet trained briefly on the real MNIST."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import NO_MNIST, plugrad, real_mnist

import plugrad as pg
from plugrad.data.dataset import MNIST
from plugrad.nn import LeNet

Image = pytest.importorskip("PIL.Image", reason="the test extra installs Pillow")
MNIST_DIR = real_mnist()
pytestmark = pytest.mark.skipif(MNIST_DIR is None, reason=NO_MNIST)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """150 steps of the quick-start job: about 95% test accuracy in a few seconds."""
    folder = tmp_path_factory.mktemp("trained")
    done = plugrad("train", "--data", MNIST_DIR, "--epochs", "1", "--limit", "150",
                   cwd=folder, timeout=600)
    assert done.returncode == 0, done.stderr
    return folder / "lenet_mnist.pgd"


@pytest.fixture(scope="module")
def test_set() -> tuple[np.ndarray, np.ndarray]:
    images, labels = MNIST(MNIST_DIR, train=False, download=False).arrays
    return images[..., 0], labels


def _logits(checkpoint: Path, images: np.ndarray) -> np.ndarray:
    """The model's logits for (N, 32, 32) float64 inputs, scored here batch by batch."""
    model = LeNet()
    model.load_state_dict(pg.load(str(checkpoint))["model"])
    model.eval()
    return np.concatenate([model(pg.Tensor(images[i:i + 1000, None].astype(np.float32))).numpy()
                           for i in range(0, len(images), 1000)]).astype(np.float64)


def test_eval_reports_loss_accuracy_and_per_class_counts(trained, test_set, tmp_path):
    images, labels = test_set
    done = plugrad("eval", str(trained), "--data", MNIST_DIR, "--plot", "confusion.png",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # Independently: normalise and pad by hand, log-softmax and counts in float64 NumPy.
    normalised = np.pad((images - 0.1307 * 255) / (0.3081 * 255), ((0, 0), (2, 2), (2, 2)))
    logits = _logits(trained, normalised)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(len(labels)), labels].mean()
    predicted = logits.argmax(axis=1)
    loss_shown, accuracy_shown = re.search(r"test loss ([\d.]+)  accuracy ([\d.]+)%",
                                           done.stdout).groups()
    assert float(loss_shown) == pytest.approx(loss, abs=1e-4)
    assert float(accuracy_shown) == pytest.approx(100 * np.mean(predicted == labels), abs=0.006)
    assert 0.9 < np.mean(predicted == labels) < 1
    rows = re.findall(r"^\s+(\d)\s+(\d+)\s+(\d+)\s+([\d.]+)%\s+([\d.]+)%$", done.stdout, re.M)
    assert [int(r[0]) for r in rows] == list(range(10))
    for digit, count, correct, recall, precision in rows:
        digit = int(digit)
        assert int(count) == np.sum(labels == digit)
        assert int(correct) == np.sum((labels == digit) & (predicted == digit))
        assert float(precision) == pytest.approx(
            100 * int(correct) / np.sum(predicted == digit), abs=0.006)
    with Image.open(tmp_path / "confusion.png") as plot:
        assert plot.format == "PNG" and plot.size[0] > 300


def test_predict_classifies_png_and_jpeg_files_and_inverted_digits(trained, test_set, tmp_path):
    images, labels = test_set
    files = []
    for i in range(24):
        Image.fromarray(images[i]).save(tmp_path / f"digit{i}.png")
        files.append(f"digit{i}.png")
    for i in range(3):  # dark on light, as a digit written on paper; and a JPEG
        Image.fromarray(255 - images[i]).save(tmp_path / f"paper{i}.png")
        Image.fromarray(images[i]).save(tmp_path / f"photo{i}.jpg", quality=90)
        files += [f"paper{i}.png", f"photo{i}.jpg"]
    done = plugrad("predict", str(trained), *files, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = {name: (int(digit), float(percent)) for name, digit, percent in
             re.findall(r"^(\S+)\s+(\d)\s+\(([\d.]+)%\)$", done.stdout, re.M)}
    assert list(shown) == files
    right = sum(shown[f"digit{i}.png"][0] == labels[i] for i in range(24))
    assert right >= 21, shown  # the model scores about 95% on the test set
    for i in range(3):
        digit, percent = shown[f"digit{i}.png"]
        assert shown[f"paper{i}.png"][0] == shown[f"photo{i}.jpg"][0] == digit
        assert shown[f"paper{i}.png"][1] == pytest.approx(percent, abs=1.0)
    # The quick start's recipe by hand for one file: grayscale, 32x32, normalised.
    with Image.open(tmp_path / "paper0.png") as image:
        gray = 255 - np.asarray(image.convert("L").resize((32, 32), Image.BILINEAR), np.float64)
    logits = _logits(trained, ((gray - 0.1307 * 255) / (0.3081 * 255))[None])[0]
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert shown["paper0.png"] == (probabilities.argmax(),
                                   pytest.approx(100 * probabilities.max(), abs=0.06))


def test_predict_rejects_what_is_not_an_image(trained, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    done = plugrad("predict", str(trained), "notes.png", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("plugrad predict: error: notes.png: cannot read it as an image")
    missing = plugrad("predict", str(trained), "nowhere.png", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "plugrad predict: error: no such image file: nowhere.png"
