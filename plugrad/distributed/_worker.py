"""One rank of a :class:`plugrad.distributed.launcher` job: ``python -m`` this with the run
folder (through :mod:`plugrad.distributed._rank`, which reports a failure); it finds the
function, joins the process group, runs, and leaves its result there."""
from __future__ import annotations

import importlib
import os
import pickle
import runpy
import sys
import types
from pathlib import Path
from typing import Any, Callable


def _load_main(path: str) -> types.ModuleType:
    """The launching script, run as ``__mp_main__`` (its ``__main__`` guard stays shut)."""
    sys.path.insert(0, os.path.dirname(path))
    module = types.ModuleType("__mp_main__")
    module.__dict__.update(runpy.run_path(path, run_name="__mp_main__"))
    module.__file__ = path
    # Pickled arguments that name __main__ objects find them here.
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module
    return module


def _resolve(target: dict[str, Any]) -> Callable:
    from plugrad.distributed.launcher import launcher

    if target["main_path"]:
        found: Any = _load_main(target["main_path"])
    else:
        found = importlib.import_module(target["module"])
    for part in target["qualname"].split("."):
        found = getattr(found, part)
    if not isinstance(found, launcher):
        return found
    if found.func is None:
        raise TypeError(f"launcher: {target['qualname']} is a launcher without a function when "
                        f"the rank imports it; decorate the function itself (@launcher(...))")
    return found.func


def main(run_dir: Path) -> None:
    from plugrad._atomic_file import write_atomically
    from plugrad.distributed.group import get_rank, init_process_group

    task = pickle.loads((run_dir / "task.pkl").read_bytes())
    sys.path[:] = task["sys_path"]
    func = _resolve(task["target"])
    args, kwargs = pickle.loads((run_dir / "args.pkl").read_bytes())
    init_process_group(device_type=task["device_type"], backend=task["backend"],
                       timeout=task["timeout"])
    result = pickle.dumps(func(*args, **kwargs))
    write_atomically(run_dir / f"result{get_rank()}.pkl", lambda f: f.write(result),
                     who="launcher")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
