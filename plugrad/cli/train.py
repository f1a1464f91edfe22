"""Train the quick start's LeNet on MNIST, saving a checkpoint after every epoch.

    plugrad train --data ../shared/datasets/mnist
    plugrad train --resume lenet_mnist.pgd         # continue a stopped run where it left off

Each epoch prints its training loss, test loss and accuracy, time and learning rate. The
checkpoint holds the model, optimizer and scheduler state, the epoch, the random states and the
run's settings, so a resumed run reproduces the uninterrupted one exactly; Ctrl-C stops with
the last finished epoch saved.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from plugrad.cli import UsageError, checks, job

HELP = "train LeNet on MNIST (the quick-start job), or resume a stopped run"

#: Settings that decide the numbers: a resumed run keeps the ones it was started with.
SETTINGS = ("batch_size", "lr", "momentum", "weight_decay", "lr_decay", "lr_decay_epochs",
            "seed", "limit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="SGD weight decay")
    parser.add_argument("--lr-decay", type=float, default=0.1,
                        help="factor the learning rate is multiplied by at each decay epoch")
    parser.add_argument("--lr-decay-epochs", default="auto",
                        help="comma-separated epochs after which the learning rate decays; "
                             "'auto' = after 60%% and 80%% of the epochs, rounded (a decay after "
                             "the last epoch is dropped), 'none' = never")
    parser.add_argument("--device", default=None,
                        help="device to train on, e.g. cpu0 or gpu0 (default: xpux, the best "
                             "available)")
    parser.add_argument("--data", default=None,
                        help="folder with the four MNIST IDX files (gzipped or not); "
                             "downloaded into the cache folder when omitted")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and data order")
    parser.add_argument("--checkpoint", default="lenet_mnist.pgd",
                        help="file saved after every epoch (model, optimizer, scheduler, random "
                             "state); with --resume, the resumed file unless given")
    parser.add_argument("--resume", default=None, metavar="CHECKPOINT",
                        help="continue the run saved in CHECKPOINT with its settings; --epochs, "
                             "--data, --device, --workers, --checkpoint and --plot may be given")
    parser.add_argument("--plot", default=None, metavar="FILE.png",
                        help="write loss/accuracy curves (needs matplotlib: plugrad[plot])")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="use only the first N training batches of each epoch (quick checks)")
    parser.add_argument("--trace", action="store_true",
                        help="run the training step through plugrad.jit.trace: recorded once "
                             "per batch shape and learning rate, then replayed without the "
                             "framework's per-op Python (the same numbers, bit for bit)")
    parser.add_argument("--nproc", type=int, default=1,
                        help="train data-parallel on this many processes (MPI ranks; needs "
                             "plugrad[mpi]); --batch-size is per process, rank 0 reports "
                             "and saves")


def training_step(model: Any, gm: Any, optimizer: Any) -> Callable[[Any, Any], Any]:
    """The main job's step on a batch: forward, cross-entropy, backward, optimizer step;
    returns the loss. The benchmarks time this very function."""
    import plugrad.functional as F

    def train_step(images: Any, labels: Any) -> Any:
        with gm:
            loss = F.nn.cross_entropy(model(images), labels)
            gm.backward(loss)
            optimizer.step().clear_grad()
        return loss

    return train_step


def decay_epochs(spec: str, epochs: int) -> list[int]:
    """The 1-based epochs after which the learning rate decays."""
    if spec == "none":
        return []
    if spec == "auto":
        # A short fine-tuning phase at a lower rate settles the weights the large steps leave
        # oscillating; it is worth a few tenths of a percent of test accuracy on MNIST.
        return sorted({round(epochs * 0.6), round(epochs * 0.8)} - {0, epochs})
    try:
        return sorted(int(e) for e in spec.split(","))
    except ValueError:
        raise UsageError(f"--lr-decay-epochs: expected 'auto', 'none' or numbers like 6,8; "
                         f"got {spec!r}") from None


def _settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The run's settings and, with --resume, the checkpoint to continue from."""
    if args.resume is None:
        settings = {name: getattr(args, name) for name in (*SETTINGS, "epochs")}
        return {**settings, "processes": _processes(args)}, None
    state = checks.checkpoint(args.resume)
    if "settings" not in state or "epoch" not in state:
        raise UsageError(f"--resume: {args.resume} holds no run to resume (no settings or "
                         f"epoch); it was not written by 'plugrad train'")
    given = {token.split("=", 1)[0] for token in args.argv if token.startswith("--")}
    fixed = sorted(f"--{name.replace('_', '-')}" for name in SETTINGS
                   if f"--{name.replace('_', '-')}" in given)
    if fixed:
        raise UsageError(f"--resume keeps the settings the run started with; drop "
                         f"{', '.join(fixed)} or start a new run")
    settings = json.loads(state["settings"])
    started = settings.get("processes")  # absent from checkpoints of older versions
    if started is not None and started != _processes(args):
        raise UsageError(f"--resume: {args.resume} was trained by {started} process"
                         f"{'es' if started > 1 else ''}; resume it with --nproc {started} "
                         f"(another count splits each batch differently, so the run would not "
                         f"continue the way it started)")
    if "--epochs" in given:
        settings["epochs"] = args.epochs
    if settings["epochs"] <= state["epoch"]:
        raise UsageError(f"--resume: {args.resume} already holds {state['epoch']} of "
                         f"{settings['epochs']} epochs; ask for more with --epochs N")
    if "--checkpoint" not in given:
        args.checkpoint = args.resume
    return settings, state


def _processes(args: argparse.Namespace) -> int:
    """How many processes train: --nproc where the job starts, the group's size in a rank."""
    if args.nproc > 1:
        return args.nproc
    from plugrad.distributed import get_world_size

    return get_world_size()


def _check(args: argparse.Namespace, settings: dict[str, Any]) -> None:
    """Everything that can be wrong with the arguments, found before any training."""
    for name in ("epochs", "batch_size", "limit"):
        value = settings[name]
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')}: expected a positive number; "
                             f"got {value}")
    if args.workers < 0:
        raise UsageError(f"--workers: expected 0 or more; got {args.workers}")
    if args.nproc < 1:
        raise UsageError(f"--nproc: expected 1 or more processes; got {args.nproc}")
    if settings["lr"] <= 0:
        raise UsageError(f"--lr: expected a positive learning rate; got {settings['lr']}")
    decay_epochs(settings["lr_decay_epochs"], settings["epochs"])
    checks.mnist_folder(args.data)
    checks.output_path(args.checkpoint, "--checkpoint")
    if args.plot:
        checks.output_path(args.plot, "--plot")
        checks.need("matplotlib", "plot", "--plot")


def _random_state(sampler: Any) -> dict[str, Any]:
    import plugrad

    return {"numpy": np.random.get_state(), "plugrad": plugrad.random.get_state(),
            "sampler": sampler.rng.get_state()}


def _restore(state: dict[str, Any], model: Any, optimizer: Any, scheduler: Any,
             sampler: Any) -> list[dict[str, float]]:
    """Put a checkpoint's run back in place; returns its history."""
    import plugrad

    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    # The milestones follow --epochs (which a resume may raise); the epoch count is saved.
    scheduler.load_state_dict({**state["scheduler"], "milestones": scheduler.milestones})
    scheduler.step(scheduler.current_epoch)
    np.random.set_state(tuple(state["random"]["numpy"]))
    plugrad.random.set_state(state["random"]["plugrad"])
    sampler.rng.set_state(tuple(state["random"]["sampler"]))
    return json.loads(state["history"])


def _progress(total: int, epoch: int, shown: bool) -> Any:
    """A bar with ETA and images/s on a terminal; nothing otherwise (each epoch prints a line)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=f"epoch {epoch}", unit="img", unit_scale=True, leave=False,
                dynamic_ncols=True, mininterval=0.25,
                disable=not (shown and sys.stderr.isatty()))


def train(args: argparse.Namespace) -> list[dict[str, float]]:
    """Run (or resume) the job; returns one record per epoch."""
    import plugrad
    import plugrad.optimizer as optim
    from plugrad.autodiff import GradManager
    from plugrad.distributed.data_parallel import setup

    settings, state = _settings(args)
    _check(args, settings)
    device = checks.device(args.device)
    plugrad.random.seed(settings["seed"])
    np.random.seed(settings["seed"])
    train_loader, test_loader = job.loaders(args.data, settings["batch_size"], settings["seed"],
                                            args.workers)
    model = job.lenet()
    callbacks, reports = setup(model)  # data-parallel ranks: only rank 0 reports and saves
    say = print if reports else lambda *args, **kwargs: None
    gm = GradManager().attach(model.parameters(), callbacks=callbacks)
    optimizer = optim.SGD(model.parameters(), lr=settings["lr"], momentum=settings["momentum"],
                          weight_decay=settings["weight_decay"])
    epochs = settings["epochs"]
    scheduler = optim.MultiStepLR(optimizer, decay_epochs(settings["lr_decay_epochs"], epochs),
                                  gamma=settings["lr_decay"])
    history = [] if state is None else _restore(state, model, optimizer, scheduler,
                                                train_loader.sampler)

    train_step = training_step(model, gm, optimizer)
    if args.trace:
        from plugrad.jit import trace

        train_step = trace(train_step, symbolic=True)
    limit = settings["limit"]
    steps = len(train_loader) if limit is None else min(limit, len(train_loader))
    first = len(history) + 1
    say(f"training LeNet on MNIST: epochs {first}-{epochs} of {epochs}, batch "
        f"{settings['batch_size']}, {steps} steps/epoch, device {device.logical} "
        f"({device.physical})", flush=True)
    saved = None
    try:
        for epoch in range(first, epochs + 1):
            start, total_loss, seen = time.perf_counter(), 0.0, 0
            lr = optimizer.param_groups[0]["lr"]
            with _progress(steps * settings["batch_size"], epoch, reports) as bar:
                for step, (images, labels) in enumerate(train_loader):
                    if step >= steps:
                        break
                    loss = train_step(plugrad.Tensor(images, device=device),
                                      plugrad.Tensor(labels, device=device))
                    value = loss.item()
                    total_loss += value * len(labels)
                    seen += len(labels)
                    bar.set_postfix_str(f"loss {value:.4f}", refresh=False)
                    bar.update(len(labels))
                bar.refresh()  # the epoch's last state, however short the epoch was
            seconds = time.perf_counter() - start
            scheduler.step()
            if not reports:
                continue
            scored = job.evaluate(model, test_loader, device)
            history.append({"epoch": epoch, "loss": total_loss / max(seen, 1),
                            "test_loss": scored.loss, "accuracy": scored.accuracy,
                            "seconds": seconds, "lr": lr})
            plugrad.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "epoch": epoch,
                          "history": json.dumps(history), "settings": json.dumps(settings),
                          "random": _random_state(train_loader.sampler)}, args.checkpoint)
            saved = epoch
            print(f"epoch {epoch:2d}  loss {history[-1]['loss']:.4f}  test loss "
                  f"{scored.loss:.4f}  test accuracy {100 * scored.accuracy:.2f}%  "
                  f"time {seconds:.1f}s  lr {lr:g}", flush=True)
    except KeyboardInterrupt:
        if not reports:
            raise SystemExit(130) from None
        path = Path(args.checkpoint).resolve()
        where = (f"epoch {saved} is saved in {path}; continue with: plugrad train --resume "
                 f"{args.checkpoint}") if saved else "no epoch finished, nothing was saved"
        print(f"interrupted; {where}", file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    if not reports:
        return history
    print(f"saved checkpoint to {Path(args.checkpoint).resolve()}")
    if args.plot:
        plot(history, args.plot)
        print(f"saved curves to {Path(args.plot).resolve()}")
    return history


def plot(history: list[dict[str, float]], path: str) -> None:
    """Loss and accuracy per epoch, side by side, with whole-number epoch ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [h["loss"] for h in history], marker="o", label="training")
    left.plot(epochs, [h["test_loss"] for h in history], marker="o", label="test")
    left.set(xlabel="epoch", ylabel="loss", title="Loss")
    left.legend()
    right.plot(epochs, [100 * h["accuracy"] for h in history], marker="o", color="tab:green")
    right.set(xlabel="epoch", ylabel="test accuracy (%)", title="Accuracy")
    for axes in (left, right):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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


def run(args: argparse.Namespace) -> int:
    if args.nproc > 1:
        from plugrad.distributed.data_parallel import start

        _check(args, _settings(args)[0])  # one line here, not one per rank
        checks.device(args.device)
        return start(["-m", "plugrad", *_without_nproc(args.argv)], args.nproc)
    train(args)
    return 0
