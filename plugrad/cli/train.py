"""``plugrad train``: the quick-start job, LeNet on MNIST, as one command.

    plugrad train --data ../shared/datasets/mnist --epochs 10

Prints the per-epoch training loss, test accuracy and time, saves a checkpoint (model and
optimizer state, written atomically) and, with ``--plot``, draws the curves.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plugrad train",
                                     description="Train LeNet on MNIST (the quick-start job).")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="SGD weight decay")
    parser.add_argument("--lr-decay", type=float, default=0.1,
                        help="factor the learning rate is multiplied by at each decay epoch")
    parser.add_argument("--lr-decay-epochs", default="auto",
                        help="comma-separated epochs after which the learning rate decays; "
                             "'auto' = after 60%% and 80%% of the epochs, 'none' = never")
    parser.add_argument("--device", default=None,
                        help="device to train on, e.g. xpux (default), cpu0, gpu0")
    parser.add_argument("--data", default=None,
                        help="folder with the four MNIST IDX files (gzipped or not); "
                             "downloaded into the cache folder when omitted")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and data order")
    parser.add_argument("--checkpoint", default="lenet_mnist.pgd",
                        help="where to save the trained model and optimizer state")
    parser.add_argument("--plot", default=None, metavar="FILE.png",
                        help="write loss/accuracy curves (needs matplotlib)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only this many training batches per epoch (quick checks)")
    parser.add_argument("--nproc", type=int, default=1,
                        help="train data-parallel on this many processes (MPI ranks; needs "
                             "plugrad[mpi]); --batch-size is per process, rank 0 reports "
                             "and saves")
    return parser


def decay_epochs(spec: str, epochs: int) -> list[int]:
    """The 1-based epochs after which the learning rate decays."""
    if spec == "none":
        return []
    if spec == "auto":
        # A short fine-tuning phase at a lower rate settles the weights the large steps leave
        # oscillating; it is worth a few tenths of a percent of test accuracy on MNIST.
        return sorted({round(epochs * 0.6), round(epochs * 0.8)} - {0, epochs}) \
            if epochs >= 5 else []
    try:
        return sorted(int(e) for e in spec.split(","))
    except ValueError:
        raise SystemExit(f"--lr-decay-epochs: expected 'auto', 'none' or numbers like 6,8; "
                         f"got {spec!r}") from None


def _loaders(args: argparse.Namespace):
    import plugrad.data as data
    import plugrad.data.transform as T
    from plugrad.data.dataset import MNIST

    download = args.data is None
    train_set = MNIST(args.data, train=True, download=download)
    test_set = MNIST(args.data, train=False, download=download)
    transform = T.Compose([T.Normalize(0.1307 * 255, 0.3081 * 255), T.Pad(2), T.ToMode("CHW")])
    train_sampler = data.RandomSampler(train_set, batch_size=args.batch_size, seed=args.seed)
    # Evaluated by one process (rank 0 when data-parallel): the whole test set, unsplit.
    test_sampler = data.SequentialSampler(test_set, batch_size=500, world_size=1, rank=0)
    train = data.DataLoader(train_set, train_sampler, transform, num_workers=args.workers)
    test = data.DataLoader(test_set, test_sampler, transform, num_workers=args.workers)
    return train, test


def evaluate(model: Any, loader: Any, device: Any) -> float:
    """Test accuracy of ``model`` over ``loader``."""
    import plugrad
    import plugrad.functional as F

    model.eval()
    correct = total = 0
    for images, labels in loader:
        logits = model(plugrad.Tensor(images, device=device))
        predicted = F.argmax(logits, axis=1)
        correct += (predicted == plugrad.Tensor(labels, device=device)).sum().item()
        total += len(labels)
    model.train()
    return correct / max(total, 1)


def _plot(history: list[dict[str, float]], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'plugrad[plot]'") from None
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [h["loss"] for h in history], marker="o")
    left.set(xlabel="epoch", ylabel="training loss", title="Loss")
    right.plot(epochs, [100 * h["accuracy"] for h in history], marker="o", color="tab:green")
    right.set(xlabel="epoch", ylabel="test accuracy (%)", title="Accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def train(args: argparse.Namespace) -> list[dict[str, float]]:
    """Run the job; returns one record per epoch (loss, accuracy, seconds)."""
    import plugrad
    import plugrad.functional as F
    import plugrad.optimizer as optim
    from plugrad.autodiff import GradManager
    from plugrad.cli.progress import Progress
    from plugrad.distributed.data_parallel import setup
    from plugrad.nn import LeNet

    plugrad.random.seed(args.seed)
    np.random.seed(args.seed)
    if args.device is not None:
        plugrad.set_default_device(args.device)
    device = plugrad.core.device.get_device(None)
    train_loader, test_loader = _loaders(args)
    model = LeNet()
    callbacks, reports = setup(model)
    say = print if reports else lambda *args, **kwargs: None
    gm = GradManager().attach(model.parameters(), callbacks=callbacks)
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay)
    scheduler = optim.MultiStepLR(optimizer, decay_epochs(args.lr_decay_epochs, args.epochs),
                                  gamma=args.lr_decay)
    steps = len(train_loader) if args.limit is None else min(args.limit, len(train_loader))
    say(f"training LeNet on MNIST: {args.epochs} epochs, batch {args.batch_size}, "
        f"{steps} steps/epoch, device {device.logical} ({device.physical})", flush=True)
    history = []
    for epoch in range(1, args.epochs + 1):
        start, total_loss, seen = time.perf_counter(), 0.0, 0
        lr = optimizer.param_groups[0]["lr"]
        with Progress(steps, f"epoch {epoch}") as bar:
            for step, (images, labels) in enumerate(train_loader):
                if step >= steps:
                    break
                with gm:
                    logits = model(plugrad.Tensor(images, device=device))
                    loss = F.nn.cross_entropy(logits, plugrad.Tensor(labels, device=device))
                    gm.backward(loss)
                    optimizer.step().clear_grad()
                value = loss.item()
                total_loss += value * len(labels)
                seen += len(labels)
                bar.update(loss=value)
        train_seconds = time.perf_counter() - start
        scheduler.step()
        accuracy = evaluate(model, test_loader, device) if reports else float("nan")
        record = {"epoch": epoch, "loss": total_loss / max(seen, 1), "accuracy": accuracy,
                  "seconds": train_seconds, "lr": lr}
        history.append(record)
        say(f"epoch {epoch:2d}  loss {record['loss']:.4f}  test accuracy "
            f"{100 * accuracy:.2f}%  time {train_seconds:.1f}s  lr {lr:g}", flush=True)
    if not reports:
        return history
    plugrad.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                  "history": json.dumps(history)}, args.checkpoint)
    print(f"saved checkpoint to {Path(args.checkpoint).resolve()}")
    if args.plot:
        _plot(history, args.plot)
        print(f"saved curves to {Path(args.plot).resolve()}")
    return history


def _without_nproc(argv: list[str]) -> list[str]:
    """``argv`` minus ``--nproc N`` / ``--nproc=N``: what each rank runs."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return kept


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.nproc > 1:
        from plugrad.distributed.data_parallel import start

        return start(["-m", "plugrad", "train", *_without_nproc(argv)], args.nproc)
    if args.plot:
        try:
            import matplotlib  # noqa: F401  (checked before hours of training, not after)
        except ImportError:
            raise SystemExit("--plot needs matplotlib: pip install 'plugrad[plot]'") from None
    train(args)
    return 0
