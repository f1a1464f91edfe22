"""Recording state and the default-device scope are per thread: real threads, real training."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import plugrad
import plugrad.functional as F
from plugrad import Parameter, Tensor
from plugrad.autodiff import GradManager
from plugrad.optimizer import SGD

STEPS = 300


@pytest.fixture(autouse=True)
def fast_thread_switches():
    """Switch threads every few microseconds so the two really interleave inside each step."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


def _run_in_threads(target, arguments: list[tuple]) -> None:
    """Run ``target(*args)`` in one thread per entry; re-raise the first exception here."""
    errors: list[BaseException] = []

    def guarded(*args) -> None:
        try:
            target(*args)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    if errors:
        raise errors[0]


def _train(seed: int, barrier: threading.Barrier | None, result: dict) -> None:
    """A tiny regression trained with its own GradManager and SGD; records skipped steps."""
    rng = np.random.default_rng(seed)
    w = Parameter(rng.standard_normal((4, 3)).astype("float32"))
    b = Parameter(np.zeros(3, "float32"))
    x = Tensor(rng.standard_normal((8, 4)).astype("float32"))
    target = Tensor(rng.standard_normal((8, 3)).astype("float32"))
    gm = GradManager().attach([w, b])
    opt = SGD([w, b], lr=0.01, momentum=0.5)
    missing = 0
    for _ in range(STEPS):
        if barrier is not None:
            barrier.wait()  # both threads are inside their step at the same time
        with gm:
            loss = F.mean((F.matmul(x, w) + b - target) ** 2)
            gm.backward(loss)
        missing += sum(p.grad is None for p in (w, b))
        opt.step().clear_grad()
    result[seed] = (w.numpy(), b.numpy(), missing)


def test_two_threads_training_at_once_match_the_runs_one_after_the_other():
    alone: dict = {}
    _train(1, None, alone)
    _train(2, None, alone)
    together: dict = {}
    barrier = threading.Barrier(2)
    _run_in_threads(_train, [(seed, barrier, together) for seed in (1, 2)])
    for seed in (1, 2):
        w, b, missing = together[seed]
        assert missing == 0, f"thread {seed}: {missing} parameter gradients were None"
        np.testing.assert_array_equal(w, alone[seed][0])
        np.testing.assert_array_equal(b, alone[seed][1])


def test_a_thread_recording_does_not_record_ops_of_another_thread():
    w = Parameter(np.ones(3, "float32"))
    gm = GradManager().attach([w])
    started, finished = threading.Event(), threading.Event()
    other_tape: list[int] = []

    def other() -> None:
        started.wait(10)
        from plugrad.core.tape import state

        y = w * 2.0  # w is attached, but this thread records nothing
        other_tape.append(len(state.live_nodes))
        other_tape.append(y._node is None)
        finished.set()

    thread = threading.Thread(target=other)
    thread.start()
    with gm:
        started.set()
        finished.wait(10)
        gm.backward((w * w).sum())
    thread.join(10)
    assert other_tape == [0, True]
    np.testing.assert_array_equal(w.grad.numpy(), 2 * np.ones(3))


def test_using_device_scopes_only_the_calling_thread():
    wrong: list[str] = []
    barrier = threading.Barrier(2)

    def make(spec: str) -> None:
        with plugrad.using_device(spec):
            barrier.wait()
            for _ in range(500):
                t = Tensor([1.0, 2.0])
                if str(t.device) != f"{spec}:0" or plugrad.get_default_device() != spec:
                    wrong.append(f"{spec}: {t.device}")

    _run_in_threads(make, [("cpu0",), ("cpux",)])
    assert wrong == []
    assert plugrad.get_default_device() == "xpux"  # the process-wide default is untouched


def test_set_default_device_is_seen_by_other_threads():
    seen: list[str] = []
    plugrad.set_default_device("cpu0")
    try:
        thread = threading.Thread(target=lambda: seen.append(str(Tensor(1.0).device)))
        thread.start()
        thread.join(10)
    finally:
        plugrad.set_default_device("xpux")
    assert seen == ["cpu0:0"]
