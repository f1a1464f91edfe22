"""Classify handwritten-digit images with a checkpoint written by ``plugrad train``.

    plugrad predict lenet_mnist.pgd digit.png photo.jpg

Each image gets the quick start's preprocessing: grayscale, resized to 32x32, inverted when its
background is light (MNIST digits are light on dark), then the normalisation training used.
"""
from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from plugrad.cli import UsageError, checks, job

HELP = "classify PNG/JPEG images of digits with a checkpoint (needs plugrad[predict])"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="file written by plugrad train")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="PNG or JPEG files")
    parser.add_argument("--device", default=None,
                        help="device to run on, e.g. cpu0 or gpu0 (default: xpux)")


def preprocess(path: str) -> np.ndarray:
    """The image at ``path`` as the 32x32 float32 digit, light on dark and normalised."""
    Image = checks.need("PIL.Image", "predict", "plugrad predict")
    try:
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L").resize((32, 32), Image.BILINEAR),
                              dtype=np.float32)
    except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
        raise UsageError(f"{path}: cannot read it as an image ({exc}); expected PNG or "
                         f"JPEG") from exc
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() > 127.5:  # a dark digit on light paper, like the quick start's photo
        gray = 255 - gray
    return ((gray - job.MEAN) / job.STD)[None]


def predict(model: Any, images: np.ndarray, device: Any) -> tuple[np.ndarray, np.ndarray]:
    """(class, probability) of each of ``images`` (N, 1, 32, 32)."""
    import plugrad
    import plugrad.functional as F

    model.eval()
    probabilities = F.softmax(model(plugrad.Tensor(images, device=device)), axis=1).numpy()
    classes = probabilities.argmax(axis=1)
    return classes, probabilities[np.arange(len(classes)), classes]


def run(args: argparse.Namespace) -> int:
    checks.need("PIL.Image", "predict", "plugrad predict")
    missing = [path for path in args.images if not os.path.isfile(path)]
    if missing:
        raise UsageError(f"no such image file: {', '.join(missing)}")
    state = checks.checkpoint(args.checkpoint)
    device = checks.device(args.device)
    batch = np.stack([preprocess(path) for path in args.images])
    classes, probabilities = predict(job.lenet(state["model"]), batch, device)
    width = max(len(path) for path in args.images)
    for path, digit, probability in zip(args.images, classes, probabilities):
        print(f"{path:<{width}}  {digit}  ({100 * probability:.1f}%)")
    return 0
