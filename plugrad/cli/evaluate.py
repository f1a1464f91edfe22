"""Score a checkpoint written by ``plugrad train`` on the MNIST test set.

    plugrad eval lenet_mnist.pgd --data ../shared/datasets/mnist --plot confusion.png

Prints the test loss, the accuracy and a per-class table (images, correct, recall, precision).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from plugrad.cli import checks, job

HELP = "test loss, accuracy and a per-class table of a checkpoint on the MNIST test set"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="file written by plugrad train")
    parser.add_argument("--data", default=None,
                        help="folder with the MNIST test IDX files (gzipped or not); "
                             "downloaded into the cache folder when omitted")
    parser.add_argument("--device", default=None,
                        help="device to run on, e.g. cpu0 or gpu0 (default: xpux)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--plot", default=None, metavar="FILE.png",
                        help="write the confusion matrix as an image (needs plugrad[plot])")


def table(confusion: np.ndarray) -> str:
    """Per class: test images, correctly classified, recall and precision, in percent."""
    lines = ["class  images  correct   recall  precision"]
    predicted = confusion.sum(axis=0)
    for digit, row in enumerate(confusion):
        correct = int(row[digit])
        recall = 100 * correct / max(int(row.sum()), 1)
        precision = 100 * correct / max(int(predicted[digit]), 1)
        lines.append(f"{digit:5d}  {int(row.sum()):6d}  {correct:7d}  {recall:6.2f}%  "
                     f"{precision:8.2f}%")
    return "\n".join(lines)


def plot_confusion(confusion: np.ndarray, path: str) -> None:
    """The confusion matrix as a heat map with its counts written in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(figsize=(6, 5.5))
    image = axes.imshow(np.log1p(confusion), cmap="Blues")
    shade = np.asarray(image.norm(np.log1p(confusion)))  # each cell's place on the colour map
    classes = range(len(confusion))
    axes.set(xticks=list(classes), yticks=list(classes), xlabel="predicted", ylabel="true",
             title="Confusion matrix (MNIST test set)")
    threshold = shade.max() / 2
    for true in classes:
        for guess in classes:
            count = int(confusion[true, guess])
            if count:
                dark = shade[true, guess] > threshold
                axes.text(guess, true, str(count), ha="center", va="center", fontsize=7,
                          color="white" if dark else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    state = checks.checkpoint(args.checkpoint)
    checks.mnist_folder(args.data, train=False)
    if args.plot:
        checks.output_path(args.plot, "--plot")
        checks.need("matplotlib", "plot", "--plot")
    device = checks.device(args.device)
    model = job.lenet(state["model"])
    _, test_loader = job.loaders(args.data, 64, 0, args.workers, train=False)
    scored = job.evaluate(model, test_loader, device)
    epoch = f", epoch {state['epoch']}" if "epoch" in state else ""
    print(f"{args.checkpoint}{epoch}: {int(scored.confusion.sum())} test images on "
          f"{device.logical}")
    print(f"test loss {scored.loss:.4f}  accuracy {100 * scored.accuracy:.2f}%")
    print(table(scored.confusion))
    if args.plot:
        plot_confusion(scored.confusion, args.plot)
        print(f"saved the confusion matrix to {Path(args.plot).resolve()}")
    return 0
