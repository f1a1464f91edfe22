"""DataLoader with real worker processes (fork and spawn): order, errors, deaths,
timeouts, seeding and clean shutdown (no processes, no /dev/shm segments left)."""

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import plugrad.data as data
import plugrad.data.transform as T
from plugrad.data.dataset import MNIST
from tests.helpers.data import (
    AddNoise,
    Counter,
    FailingDataset,
    LockedCounter,
    PidTransform,
    SelfKillingDataset,
    SlowDataset,
    SquaresDataset,
    WeirdFailingDataset,
    make_mnist,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shared memory checks")

SHM_DIR = "/dev/shm"
METHODS = ["fork", "spawn"]


@pytest.fixture(params=METHODS)
def method(request, monkeypatch):
    monkeypatch.setenv("PLUGRAD_DATA_START_METHOD", request.param)
    return request.param


def shm_names(prefix):
    if not os.path.isdir(SHM_DIR):
        return []
    return [n for n in os.listdir(SHM_DIR) if n.startswith(prefix)]


def assert_cleaned(it):
    """Workers reaped and no segment of this iterator left in /dev/shm."""
    for p in it._pool.procs:
        assert not p.is_alive()
        assert p.exitcode is not None
        assert not os.path.exists(f"/proc/{p.pid}") or _is_other_process(p.pid)
    assert shm_names(it._pool.prefix) == []


def _is_other_process(pid):
    # A reaped pid may in principle be reused; a zombie of ours would be state "Z".
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True


def batches_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert len(x) == len(y)
        for u, v in zip(x, y):
            assert u.dtype == v.dtype and u.shape == v.shape
            np.testing.assert_array_equal(u, v)


def test_order_and_values_equal_single_process(method, tmp_path):
    make_mnist(str(tmp_path), 300, gz=False)
    ds = MNIST(str(tmp_path), download=False)
    transform = T.Compose([T.Normalize(0.1307 * 255, 0.3081 * 255), T.Pad(2), T.ToMode("CHW")])

    def run(**kw):
        sampler = data.RandomSampler(ds, batch_size=32, seed=11)
        return list(data.DataLoader(ds, sampler, transform, **kw))

    serial = run()
    batches_equal(run(num_workers=2), serial)
    if method == "fork":  # divide mode and the per-sample path, once
        batches_equal(run(num_workers=2, divide=True), serial)
        batches_equal(run(num_workers=3, collator=type("C", (data.Collator,), {})()), serial)


def test_stream_dataset_with_workers(method):
    serial = list(data.DataLoader(Counter(23), data.StreamSampler(5)))
    parallel = list(data.DataLoader(LockedCounter(23), data.StreamSampler(5), num_workers=2))
    batches_equal(parallel, serial)
    divided = list(data.DataLoader(Counter(23), data.StreamSampler(5), num_workers=2, divide=True))
    batches_equal(divided, serial)


def test_work_is_spread_over_workers():
    ds = SquaresDataset(12)
    out = list(
        data.DataLoader(ds, data.SequentialSampler(ds, batch_size=2), PidTransform(), num_workers=2)
    )
    pids = [int(b[1][0]) for b in out]
    assert len(set(pids)) == 2 and os.getpid() not in pids
    assert pids[0::2] == [pids[0]] * 3 and pids[1::2] == [pids[1]] * 3  # round-robin


def test_worker_exception_same_type_message_and_traceback(method):
    ds = FailingDataset(20, bad=13)
    loader = data.DataLoader(ds, data.SequentialSampler(ds, batch_size=4), num_workers=2)
    it = iter(loader)
    with pytest.raises(ValueError) as info:
        for _ in it:
            pass
    assert str(info.value) == "bad sample 13"
    tb = str(info.value.__cause__)
    assert "Traceback" in tb and "in __getitem__" in tb and "DataLoader worker" in tb
    assert 'raise ValueError(f"bad sample {i}")' in tb
    assert_cleaned(it)


def test_unrebuildable_exception_falls_back_to_runtime_error():
    ds = WeirdFailingDataset(4)
    with pytest.raises(RuntimeError, match="TwoArgError: x-0"):
        list(data.DataLoader(ds, num_workers=1))


def test_worker_killed_by_sigkill_is_detected(method):
    ds = SlowDataset(400, delay=0.01)
    it = iter(data.DataLoader(ds, data.SequentialSampler(ds, batch_size=2), num_workers=2))
    next(it)
    victim = it._pool.procs[1]
    os.kill(victim.pid, signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(
        RuntimeError, match=r"worker 1 \(pid \d+\) was killed by signal 9 \(SIGKILL\)"
    ):
        for _ in it:
            pass
    assert time.monotonic() - start < 5
    assert_cleaned(it)


def test_worker_dying_mid_batch_is_detected():
    ds = SelfKillingDataset(40, bad=9, main_pid=os.getpid())
    it = iter(data.DataLoader(ds, data.SequentialSampler(ds, batch_size=4), num_workers=2))
    with pytest.raises(RuntimeError, match="SIGKILL"):
        list(it)
    assert_cleaned(it)


def test_timeout():
    ds = SlowDataset(4, delay=3.0)
    it = iter(data.DataLoader(ds, num_workers=1, timeout=0.3))
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"timed out.*timeout=0.3"):
        next(it)
    assert time.monotonic() - start < 2.0
    assert_cleaned(it)


def test_early_break_and_gc_leave_nothing(method):
    ds = SquaresDataset(200)
    loader = data.DataLoader(ds, data.SequentialSampler(ds, batch_size=8), num_workers=2)
    it = iter(loader)
    first = next(it)
    pool = it._pool
    procs, prefix = list(pool.procs), pool.prefix
    del it
    gc.collect()
    for p in procs:
        assert not p.is_alive()
    assert shm_names(prefix) == []
    # The batch already handed out stays valid after its segment name is gone.
    assert first[1].tolist() == list(range(8))
    for _ in loader:  # a plain for/break
        break
    gc.collect()
    assert not any(n.startswith(f"plg{os.getpid()}_") for n in os.listdir(SHM_DIR))


def test_full_epoch_cleans_up_and_batches_outlive_iterator():
    ds = SquaresDataset(50)
    it = iter(data.DataLoader(ds, data.SequentialSampler(ds, batch_size=5), num_workers=2))
    kept = list(it)
    assert_cleaned(it)
    assert [b[1][0] for b in kept] == list(range(0, 50, 5))
    assert all(b[0][0, 0, 0, 0] == b[1][0] for b in kept)
    kept[3][0][...] = 0  # writable


def test_worker_seeding_reproducible_and_distinct():
    ds = SquaresDataset(16)

    def run():
        np.random.seed(123)
        return list(
            data.DataLoader(ds, data.SequentialSampler(ds, batch_size=4), AddNoise(), num_workers=2)
        )

    a, b = run(), run()
    batches_equal(a, b)
    noise0 = a[0][0] - a[0][1][:, None, None, None]  # batch 0: worker 0, batch 1: worker 1
    noise1 = a[1][0] - a[1][1][:, None, None, None]
    assert not np.array_equal(noise0, noise1)
    np.random.seed(124)
    c = list(
        data.DataLoader(ds, data.SequentialSampler(ds, batch_size=4), AddNoise(), num_workers=2)
    )
    assert not np.array_equal(c[0][0], a[0][0])


def test_interpreter_exit_with_live_iterator(tmp_path):
    script = textwrap.dedent("""
        import os, sys
        import plugrad.data as data
        from tests.helpers.data import SquaresDataset
        ds = SquaresDataset(1000)
        it = iter(data.DataLoader(ds, data.SequentialSampler(ds, batch_size=4), num_workers=2))
        batch = next(it)
        print(it._pool.prefix, *[p.pid for p in it._pool.procs], flush=True)
        sys.exit(0)  # no close(), no break: the interpreter must clean up
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - start < 30
    assert "leaked" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    prefix, *pids = out.stdout.split()
    time.sleep(0.2)
    for pid in map(int, pids):
        assert not os.path.exists(f"/proc/{pid}") or _is_other_process(pid)
    assert shm_names(prefix) == []


def test_failing_stream_stops_workers():
    class Broken(Counter):
        def __iter__(self):
            yield from super().__iter__()
            raise OSError("stream lost")

    it = iter(data.DataLoader(Broken(30), data.StreamSampler(2), num_workers=2))
    with pytest.raises(OSError, match="stream lost"):
        list(it)
    assert_cleaned(it)


def test_an_empty_segment_left_by_a_stopped_worker_is_removed():
    # A worker terminated between creating a segment's name and sizing it leaves an empty
    # segment that cannot be mapped; shutdown's cleanup must still remove the name.
    _posixshmem = pytest.importorskip("_posixshmem")
    from plugrad.data import _shm

    name = f"plg{os.getpid()}_test_empty_0"
    fd = _posixshmem.shm_open("/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
    os.close(fd)
    assert shm_names(name) == [name]
    _shm.unlink_quietly(name)
    assert shm_names(name) == []
