"""Checks that need several ranks, run by test_collectives.py through dist.launcher.

Each function returns what the test asserts on; expected values are worked out by hand there.
"""
from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np

import plugrad
import plugrad.distributed as dist
import plugrad.distributed.functional as DF
from plugrad.autodiff import GradManager
from plugrad.hookspecs import API_VERSION, DeviceType, hookimpl


def values_and_gradients(device: str | None = None) -> dict:
    rank = dist.get_rank()
    x = plugrad.Parameter(np.array([1.0, 2.0, 3.0, 4.0], dtype="float32") * (rank + 1),
                          device=device)
    gm = GradManager().attach([x])
    with gm:
        y = DF.all_reduce_sum(x)
        g = DF.all_gather(x)
        s = DF.reduce_scatter_sum(x)
        b = DF.broadcast(x)
        gm.backward((y * y).sum() + (g * 2).sum() + s.sum() * 3 + b.sum() * 5)
    m = plugrad.tensor(np.arange(6, dtype="int32").reshape(2, 3) * (1 - 2 * rank), device=device)
    group = dist.new_group([1])
    single = DF.all_reduce_sum(x, group).numpy() if rank == 1 else None
    dist.group_barrier()
    return {"y": y.numpy(), "g": g.numpy(), "s": s.numpy(), "b": b.numpy(),
            "grad": x.grad.numpy(), "max": DF.all_reduce_max(m).numpy(),
            "min": DF.all_reduce_min(m).numpy(), "gather1": DF.all_gather(m, axis=1).numpy(),
            "single": single, "device": str(x.device), "world": dist.get_world_size()}


def _plugin_without_collectives():
    """A 'bare' device type declaring no collectives (a third-party backend's situation)."""
    from plugrad.backends.numpy_backend.kernels import kernel_table

    module = type(sys)("bare_plugin")
    module.PLUGRAD_API_VERSION = API_VERSION
    module.plugrad_register = hookimpl(lambda registry: registry.add_device_type(DeviceType(
        name="bare", kernels=lambda: kernel_table(np), dtypes=("bool", "int32", "float32"),
        to_host=lambda a: np.array(a), from_host=lambda a, i: np.array(a))))
    return module


def through_the_host() -> dict:
    from plugrad.core import plugins
    from plugrad.distributed.group import WORLD, communicator

    plugins.register_plugin(_plugin_without_collectives(), name="bare")
    result = values_and_gradients("bare0")
    kinds = {"bare": type(communicator(WORLD, plugrad.tensor(1.0, device="bare0").device)),
             "cpu": type(communicator(WORLD, plugrad.tensor(1.0, device="cpu0").device))}
    result["communicators"] = {k: v.__name__ for k, v in kinds.items()}
    return result


def mismatched_model() -> str:
    width = 3 if dist.get_rank() == 0 else 4
    w = plugrad.Parameter(np.ones((2, width), dtype="float32"))
    w.name = "fc.weight"
    gm = GradManager().attach([w], callbacks=[dist.make_allreduce_cb("sum")])
    try:
        with gm:
            gm.backward((w * 2).sum())
    except ValueError as exc:
        return str(exc)
    return "no error"


def killed_mid_step() -> None:
    """Rank 1 is SIGKILLed inside its third backward pass; rank 0 waits in the all-reduce."""
    w = plugrad.Parameter(np.ones(8, dtype="float32"))
    steps = {"n": 0}

    def die_on_third(param, grad):
        if steps["n"] == 2 and dist.get_rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return grad

    gm = GradManager().attach([w], callbacks=[die_on_third, dist.make_allreduce_cb("mean")])
    for steps["n"] in range(1000):
        with gm:
            gm.backward((w * w).sum())


def raises_on_rank_1() -> None:
    x = plugrad.tensor(np.ones(4, dtype="float32"))
    for step in range(5):
        if step == 2 and dist.get_rank() == 1:
            raise KeyError("no such column on purpose")
        x = DF.all_reduce_sum(x) * 0.5


def exits_before_first_collective() -> None:
    """Rank 1 ends with status 3 after MPI started, before any collective."""
    if dist.get_rank() == 1:
        os._exit(3)
    DF.all_reduce_sum(plugrad.tensor(np.ones(4, dtype="float32")))


def sleeps_while_the_other_all_reduces() -> None:
    """Rank 1 never reaches the all-reduce (alive, busy elsewhere); rank 0 waits in it."""
    if dist.get_rank() == 1:
        time.sleep(3600)
    DF.all_reduce_sum(plugrad.tensor(np.ones(4, dtype="float32")))


def bucket_counts() -> dict:
    """How many all-reduces one LeNet backward costs, with big and with small buckets."""
    from plugrad.distributed import helper
    from plugrad.distributed.group import WORLD, communicator
    from plugrad.nn import LeNet

    comm = communicator(WORLD, plugrad.tensor(1.0).device)
    calls = []
    original = comm.all_reduce
    comm.all_reduce = lambda x, op: calls.append(x.size) or original(x, op)
    result = {}
    for bucket_bytes in (helper.BUCKET_BYTES, 50_000):
        helper.BUCKET_BYTES = bucket_bytes
        plugrad.random.seed(0)
        model = LeNet()
        gm = GradManager().attach(model.parameters(), callbacks=[dist.make_allreduce_cb("sum")])
        x = np.random.default_rng(dist.get_rank()).standard_normal((4, 1, 32, 32))
        calls.clear()
        with gm:
            gm.backward(model(plugrad.tensor(x.astype("float32"))).sum())
        result[bucket_bytes] = {"calls": list(calls),
                                "grads": [p.grad.numpy() for p in model.parameters()]}
    return result


def bad_inputs() -> list[tuple[str, str]]:
    """The errors of wrong calls, as (type name, message)."""
    messages = []
    calls = (lambda: DF.reduce_scatter_sum(plugrad.tensor(np.ones(3, dtype="float32"))),
             lambda: DF.all_gather(plugrad.tensor(1.0)),
             lambda: DF.all_gather(plugrad.tensor(np.ones((2, 2), dtype="float32")), axis=2),
             lambda: dist.new_group([0, 5]))
    for call in calls:
        try:
            call()
        except (TypeError, ValueError) as exc:
            messages.append((type(exc).__name__, str(exc)))
    return messages


if __name__ == "__main__":
    # Under plain mpiexec: run the named check on every rank.
    globals()[sys.argv[1]]()
