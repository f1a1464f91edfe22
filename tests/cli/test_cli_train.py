"""``plugrad train``: a checkpoint every epoch, exact resumption, Ctrl-C, the progress bar."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import numpy as np

import plugrad as pg
from tests.helpers.cli import plugrad, small_mnist

# 640 images in batches of 16: 40 steps an epoch, long enough to be interrupted mid-run.
TRAIN = ["--batch-size", "16", "--lr-decay-epochs", "2,3"]


def _history(path: Path) -> list[dict]:
    return json.loads(pg.load(str(path))["history"])


def _assert_same_run(resumed: Path, uninterrupted: Path) -> None:
    """Same per-epoch numbers to the last bit, and the same final weights and momenta."""
    a, b = pg.load(str(resumed)), pg.load(str(uninterrupted))
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in _history(resumed)]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"}
                     for h in _history(uninterrupted)]
    for name, value in b["model"].items():
        np.testing.assert_array_equal(np.asarray(a["model"][name]), np.asarray(value))
    for index, state in b["optimizer"]["state"].items():
        for key, value in state.items():
            np.testing.assert_array_equal(np.asarray(a["optimizer"]["state"][index][key]),
                                          np.asarray(value))


def _default_sigint() -> None:
    """Python ignores SIGINT in a child started with it ignored (a background job's)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_run_stopped_by_ctrl_c_and_resumed_matches_an_uninterrupted_run(tmp_path):
    data = str(small_mnist(tmp_path / "mnist", train=640))
    whole = plugrad("train", "--data", data, "--epochs", "4", *TRAIN, "--checkpoint",
                    "whole.pgd", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    # A real SIGINT once epoch 1 is reported, as Ctrl-C in a terminal would send.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGRAD_")}
    run = subprocess.Popen([sys.executable, "-m", "plugrad", "train", "--data", data, "--epochs",
                            "4", *TRAIN, "--checkpoint", "part.pgd"], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=_default_sigint)
    for line in run.stdout:
        if line.startswith("epoch  1"):
            run.send_signal(signal.SIGINT)
            break
    out, err = run.communicate(timeout=300)
    assert run.returncode == 130, err
    saved = pg.load(str(tmp_path / "part.pgd"))["epoch"]
    assert 1 <= saved < 4, "the run ended before the interrupt reached it"
    assert err.strip().splitlines()[-1] == (
        f"interrupted; epoch {saved} is saved in {tmp_path / 'part.pgd'}; continue with: "
        f"plugrad train --resume part.pgd")
    assert "Traceback" not in err
    resumed = plugrad("train", "--resume", "part.pgd", "--data", data, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"epochs {saved + 1}-4 of 4" in resumed.stdout
    _assert_same_run(tmp_path / "part.pgd", tmp_path / "whole.pgd")


def test_resume_with_more_epochs_continues_the_run(tmp_path):
    data = str(small_mnist(tmp_path / "mnist"))
    whole = plugrad("train", "--data", data, "--epochs", "3", *TRAIN, "--checkpoint",
                    "whole.pgd", cwd=tmp_path)
    short = plugrad("train", "--data", data, "--epochs", "1", *TRAIN, "--checkpoint",
                    "short.pgd", cwd=tmp_path)
    assert whole.returncode == 0 and short.returncode == 0, whole.stderr + short.stderr
    assert len(_history(tmp_path / "short.pgd")) == 1
    resumed = plugrad("train", "--resume", "short.pgd", "--epochs", "3", "--data", data,
                      "--checkpoint", "resumed.pgd", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_run(tmp_path / "resumed.pgd", tmp_path / "whole.pgd")
    # The learning rate follows the decay epochs 2,3 of the run's settings.
    assert [h["lr"] for h in _history(tmp_path / "resumed.pgd")] == [0.01, 0.01, 0.01 * 0.1]


def test_a_traced_run_replays_its_step_and_trains_exactly_as_an_eager_one(tmp_path, monkeypatch):
    from plugrad.cli import main
    from plugrad.jit.program import Program

    # 600 images in batches of 16 end each epoch with a batch of 8 (a second input shape), and
    # the rate decays after epoch 2 (a changed hyper-parameter): both make the step record again.
    data = str(small_mnist(tmp_path / "mnist", train=600))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", data, "--epochs", "3", *TRAIN, "--checkpoint",
                 "eager.pgd"]) == 0
    replays = []
    replay = Program.run

    def counted(program, tensors):
        outputs = replay(program, tensors)
        replays.append(program)  # a replay that ran to the end
        return outputs

    monkeypatch.setattr(Program, "run", counted)
    assert main(["train", "--data", data, "--epochs", "3", *TRAIN, "--trace", "--checkpoint",
                 "traced.pgd"]) == 0
    # Every call but those that recorded: the first two (the first makes momentum buffers),
    # the first of 8 images, and one per shape at the new rate.
    assert len(replays) == 3 * 38 - 5
    _assert_same_run(tmp_path / "traced.pgd", tmp_path / "eager.pgd")


def test_auto_decay_follows_its_help_for_short_runs(tmp_path):
    data = str(small_mnist(tmp_path / "mnist"))
    done = plugrad("train", "--data", data, "--epochs", "2", "--batch-size", "32", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # 60% of 2 epochs rounds to 1: the second epoch runs at a tenth of the rate.
    assert [h["lr"] for h in _history(tmp_path / "lenet_mnist.pgd")] == [0.01, 0.01 * 0.1]


def test_progress_bar_on_a_terminal_one_line_per_epoch_otherwise(tmp_path):
    data = str(small_mnist(tmp_path / "mnist", train=320))
    args = [sys.executable, "-m", "plugrad", "train", "--data", data, "--epochs", "2",
            "--batch-size", "16"]
    piped = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
    assert len([line for line in piped.stdout.splitlines() if line.startswith("epoch")]) == 2
    leader, follower = pty.openpty()
    # A narrow terminal: the bar must fit it, not wrap into a stack of bars.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=follower, text=True,
                          cwd=tmp_path, timeout=300)
    os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    bar = b"".join(chunks).decode(errors="replace")
    assert done.returncode == 0
    # tqdm's bar: images done of the total, elapsed<remaining (the ETA), images per second.
    assert "epoch 1" in bar and "/320" in bar and "img/s" in bar and "<" in bar, bar
    assert "loss " in bar
    drawn = [part for part in re.split(r"[\r\n]+", bar) if part.strip()]
    assert drawn and max(len(part) for part in drawn) <= 60, drawn
