"""Checks of command-line arguments, run before any work starts.

Each returns the checked value or raises :class:`plugrad.cli.UsageError` with one line that
says what is wrong and what to do.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from plugrad.cli import UsageError

__all__ = ["checkpoint", "device", "mnist_folder", "need", "output_path"]


def device(name: str | None) -> Any:
    """The device ``name`` resolves to (the default device for None)."""
    import plugrad
    from plugrad.core.device import get_device

    try:
        if name is not None:
            plugrad.set_default_device(name)
        return get_device(None)
    except (ValueError, RuntimeError) as exc:
        raise UsageError(f"--device: {exc}; 'plugrad info' lists the devices") from exc


def mnist_folder(path: str | None, *, train: bool = True) -> str | None:
    """``--data``: a folder holding the MNIST IDX files (gzipped or not); None downloads them."""
    from plugrad.data.dataset import MNIST

    if path is None:
        return None
    if not os.path.isdir(path):
        raise UsageError(f"--data: {path} is not a folder; expected one holding the MNIST IDX "
                         f"files, or omit --data to download them")
    wanted = MNIST.split_files[False] + (MNIST.split_files[True] if train else ())
    missing = [name for name in wanted if not os.path.exists(os.path.join(path, name))
               and not os.path.exists(os.path.join(path, name + ".gz"))]
    if missing:
        raise UsageError(f"--data: {path} lacks {', '.join(missing)} (or .gz); expected the "
                         f"MNIST IDX files, or omit --data to download them")
    return path


def output_path(path: str, option: str) -> Path:
    """A file the command will write: its folder must exist and be writable."""
    target = Path(path).expanduser()
    folder = target.parent
    if target.is_dir():
        raise UsageError(f"{option}: {path} is a folder; expected a file name")
    if not folder.is_dir():
        raise UsageError(f"{option}: the folder {folder} does not exist; create it or choose "
                         f"another path")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option}: the folder {folder} is not writable; choose another path")
    return target


def need(module: str, extra: str, option: str) -> Any:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"{option} needs {module.split('.')[0]}: "
                         f"pip install 'plugrad[{extra}]'") from None


def checkpoint(path: str) -> dict[str, Any]:
    """A checkpoint written by ``plugrad train``."""
    import plugrad
    from plugrad.serialization import CorruptFileError

    if os.path.isdir(path):
        raise UsageError(f"checkpoint {path} is a folder; expected a file written by "
                         f"'plugrad train'")
    if not os.path.isfile(path):
        raise UsageError(f"checkpoint {path} does not exist; 'plugrad train' writes one")
    try:
        state = plugrad.load(path)
    except (CorruptFileError, OSError) as exc:
        raise UsageError(f"checkpoint {path} cannot be read: {exc}") from exc
    if not isinstance(state, dict) or "model" not in state:
        raise UsageError(f"checkpoint {path} holds no model state; expected a file written by "
                         f"'plugrad train'")
    return state
