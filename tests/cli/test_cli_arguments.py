"""``plugrad`` and its subcommands: help with defaults, and bad arguments as one line, exit 2."""
from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

import plugrad as pg
from plugrad.core import device
from tests.helpers.cli import plugrad, small_mnist


def test_help_lists_the_subcommands_and_no_stray_positional(tmp_path):
    out = plugrad("--help", cwd=tmp_path).stdout
    assert "usage: plugrad [-h] [--version] [--debug] COMMAND ..." in out
    for command in ("train", "eval", "predict", "info"):
        assert re.search(rf"^\s+{command}\s+\S", out, re.M), command
    assert "args" not in out


def test_train_help_shows_the_defaults(tmp_path):
    out = " ".join(plugrad("train", "--help", cwd=tmp_path).stdout.split())
    for option, default in (("--epochs", "10"), ("--batch-size", "64"), ("--lr", "0.01"),
                            ("--momentum", "0.9"), ("--weight-decay", "0.0005"),
                            ("--lr-decay-epochs", "auto"), ("--workers", "0"), ("--seed", "0"),
                            ("--checkpoint", "lenet_mnist.pgd")):
        assert re.search(rf"{option} \S+ .*?\(default: {re.escape(default)}\)", out), option
    for option in ("--resume", "--plot", "--limit", "--data", "--device", "--debug"):
        assert option in out


@pytest.mark.parametrize("columns", [72, 120])
def test_a_commands_description_keeps_its_examples_and_fills_its_prose(tmp_path, columns):
    out = plugrad("train", "--help", cwd=tmp_path, env={"COLUMNS": str(columns)}).stdout
    lines = out.splitlines()
    assert "    plugrad train --data ../shared/datasets/mnist" in lines
    assert ("    plugrad train --resume lenet_mnist.pgd         # continue a stopped run where "
            "it left off") in lines
    prose = lines[lines.index("    plugrad train --data ../shared/datasets/mnist") + 3:]
    prose = prose[:prose.index("")]  # the paragraph after the examples, refilled to the width
    assert " ".join(prose).startswith("Each epoch prints its training loss, test loss and")
    assert all(len(line) <= columns - 2 for line in prose) and len(prose) > 1


def test_the_conformance_commands_examples_stay_and_its_description_fills(monkeypatch):
    from plugrad.conformance import cli

    monkeypatch.setenv("COLUMNS", "80")
    lines = cli._parser().format_help().splitlines()
    assert "  python -m plugrad.conformance --kernel-table    # the kernel signatures, as " \
           "Markdown" in lines
    description = lines[lines.index("") + 1:]
    description = description[:description.index("")]
    assert description[0].startswith("Check that a plugrad backend plugin conforms")
    assert len(description) > 1 and all(len(line) <= 78 for line in description)


def test_version_is_the_installed_distributions(tmp_path):
    done = plugrad("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip() == f"plugrad {importlib.metadata.version('plugrad')}"
    assert pg.__version__ == importlib.metadata.version("plugrad")


def _bad_arguments(tmp_path: Path) -> list[tuple[list[str], str]]:
    data = str(small_mnist(tmp_path / "mnist"))
    (tmp_path / "empty").mkdir()
    cases = [
        (["train", "--data", str(tmp_path / "nowhere")], "--data: .*nowhere is not a folder"),
        (["train", "--data", str(tmp_path / "empty")],
         "--data: .*lacks t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, train-images-idx3"),
        (["train", "--data", data, "--device", "foo"], "--device: device 'foo': no backend "
                                                       "provides device type 'foo'"),
        (["train", "--data", data, "--checkpoint", "/no/such/dir/x.pgd"],
         "--checkpoint: the folder /no/such/dir does not exist"),
        (["train", "--data", data, "--plot", "/no/such/dir/c.png"],
         "--plot: the folder /no/such/dir does not exist"),
        (["train", "--data", data, "--epochs", "0"], "--epochs: expected a positive number"),
        (["train", "--data", data, "--nproc", "2", "--device", "foo"],
         "--device: device 'foo'"),
        (["train", "--data", data, "--nproc", "0"], "--nproc: expected 1 or more processes"),
        (["train", "--data", data, "--lr-decay-epochs", "six"], "--lr-decay-epochs: expected"),
        (["train", "--resume", str(tmp_path / "missing.pgd")], "checkpoint .*missing.pgd does "
                                                              "not exist"),
        (["eval", str(tmp_path / "missing.pgd")], "checkpoint .*missing.pgd does not exist"),
        (["eval", data], "checkpoint .*mnist is a folder"),
        (["eval", str(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz")],
         "checkpoint .*t10k-labels-idx1-ubyte.gz cannot be read"),
    ]
    if not device._probe(device.plugins.device_types()["gpu"])[0]:
        cases.append((["train", "--data", data, "--device", "gpu0"],
                      "--device: device 'gpu0': device type 'gpu' .* is unavailable"))
    return cases


def test_bad_arguments_are_one_line_exit_2_and_nothing_is_trained(tmp_path):
    for args, message in _bad_arguments(tmp_path):
        done = plugrad(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, (args, done.stderr)
        assert re.match(rf"plugrad {args[0]}: error: {message}", lines[0]), (args, lines[0])
        assert "training" not in done.stdout, args
    assert not list(tmp_path.glob("*.pgd"))


def test_debug_shows_the_traceback(tmp_path):
    done = plugrad("--debug", "train", "--device", "foo", cwd=tmp_path)
    assert done.returncode != 0 and "Traceback (most recent call last)" in done.stderr
    assert "UsageError: --device: device 'foo'" in done.stderr
    after = plugrad("train", "--device", "foo", "--debug", cwd=tmp_path)
    assert "Traceback (most recent call last)" in after.stderr


@pytest.mark.parametrize("option", ["--lr=0.1", "--batch-size", "--seed"])
def test_resume_refuses_settings_that_would_change_the_numbers(tmp_path, option):
    data = small_mnist(tmp_path / "mnist")
    first = plugrad("train", "--data", str(data), "--epochs", "1", "--batch-size", "32",
                    cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    args = [option] if "=" in option else [option, "3"]
    done = plugrad("train", "--resume", "lenet_mnist.pgd", "--epochs", "2", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"plugrad train: error: --resume keeps the settings the run "
                                   f"started with; drop {option.split('=')[0]} or start a new "
                                   f"run")
    finished = plugrad("train", "--resume", "lenet_mnist.pgd", cwd=tmp_path)
    assert finished.returncode == 2 and "already holds 1 of 1 epochs" in finished.stderr


def test_resume_refuses_another_process_count(tmp_path):
    data = small_mnist(tmp_path / "mnist")
    first = plugrad("train", "--data", str(data), "--epochs", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    done = plugrad("train", "--resume", "lenet_mnist.pgd", "--epochs", "2", "--nproc", "2",
                   cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == ("plugrad train: error: --resume: lenet_mnist.pgd was trained "
                                   "by 1 process; resume it with --nproc 1 (another count "
                                   "splits each batch differently, so the run would not "
                                   "continue the way it started)")
