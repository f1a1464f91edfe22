"""plugrad.jit.trace: a recorded training step replays the kernels eager ran, bit for bit."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import plugrad as P
import plugrad.functional as F
import plugrad.module as M
import plugrad.optimizer as optim
from plugrad.autodiff import GradManager
from plugrad.core import dispatch
from plugrad.core.device import get_device
from plugrad.jit import TraceError, trace


def _batches(count: int, batch: int = 16, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((batch, 1, 32, 32)).astype(np.float32),
             rng.integers(0, 10, batch).astype(np.int32)) for _ in range(count)]


class _ConvBN(M.Module):
    """A conv net with batch norm: its running statistics are state a trace must update."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = M.Conv2d(1, 4, 3, stride=2)
        self.bn = M.BatchNorm2d(4)
        self.pool = M.AvgPool2d(3, 3)
        self.fc = M.Linear(4 * 5 * 5, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.conv(x))))
        return self.fc(F.flatten(x, 1))


def _training_step(model_class, opt_class, **opt_args):
    """(step, model): the quick-start's step on a fresh model seeded alike every time."""
    P.random.seed(0)
    model = model_class()
    gm = GradManager().attach(model.parameters())
    opt = opt_class(model.parameters(), **opt_args)

    def step(x, y):
        with gm:
            loss = F.nn.cross_entropy(model(x), y)
            gm.backward(loss)
            opt.step().clear_grad()
        return loss

    return step, model


class _KernelCounter:
    """Counts the numpy device's kernel calls made through dispatch (replay bypasses it)."""

    def __init__(self) -> None:
        self.table = get_device("cpu0").kernels
        self.real = dict(self.table)
        self.calls = 0

    def __enter__(self) -> _KernelCounter:
        def counting(kernel):
            def run(*args, **kwargs):
                self.calls += 1
                return kernel(*args, **kwargs)
            return run
        self.table.update({name: counting(kernel) for name, kernel in self.real.items()})
        return self

    def __exit__(self, *exc) -> None:
        self.table.update(self.real)


# Adam's bias correction and Adagrad's decayed rate change every step: a replay that froze
# the step count would drift from eager after the recorded call.
OPTIMIZERS = [
    (optim.SGD, dict(lr=0.01, momentum=0.9, weight_decay=5e-4)),
    (optim.Adam, dict(lr=1e-3)),
    (optim.AdamW, dict(lr=1e-3, weight_decay=1e-2)),
    (optim.Adagrad, dict(lr=1e-2, lr_decay=0.1, weight_decay=1e-4)),
]


@pytest.mark.parametrize("opt_class, opt_args", OPTIMIZERS)
def test_traced_lenet_step_matches_eager_bit_for_bit(opt_class, opt_args):
    eager, eager_model = _training_step(M.LeNet, opt_class, **opt_args)
    step, traced_model = _training_step(M.LeNet, opt_class, **opt_args)
    traced = trace(step, symbolic=True)
    steps = 50 if opt_class is optim.SGD else 25
    for x, y in _batches(steps):
        expected = eager(P.Tensor(x), P.Tensor(y)).numpy()
        got = traced(P.Tensor(x), P.Tensor(y)).numpy()
        assert got.tobytes() == expected.tobytes()
    assert len(traced.programs) == 1
    for (name, a), (_, b) in zip(eager_model.named_parameters(), traced_model.named_parameters()):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), name
        assert b.grad is None  # clear_grad's effect is replayed too


def test_replay_runs_the_recorded_kernels_without_dispatch():
    step, _model = _training_step(M.LeNet, optim.SGD, lr=0.01, momentum=0.9)
    traced = trace(step)
    x, y = (P.Tensor(a) for a in _batches(1)[0])
    traced(x, y), traced(x, y)  # the first call creates momentum buffers: the second records
    program = next(iter(traced.programs.values()))
    assert program.kernel_calls > 40  # forward, backward and the loss
    with _KernelCounter() as counter:
        traced(x, y)
        assert counter.calls == 0
        step(x, y)
        assert counter.calls >= program.kernel_calls


@pytest.mark.parametrize("opt_class, opt_args", OPTIMIZERS[1:])
def test_the_replay_runs_the_update_kernels_and_no_optimizer_python(opt_class, opt_args):
    """Adam's and Adagrad's step counts are tensors their update ops increment, so the replay
    calls the recorded update kernels, once per parameter, and never the optimizer's code."""
    op = {optim.Adagrad: "adagrad_update"}.get(opt_class, "adam_update")
    table = get_device("cpu0").kernels
    real, calls = table[op], []

    def spy(*arrays, **attrs):
        calls.append(int(arrays[-1]))  # the count the kernel reads: the replay's own
        return real(*arrays, **attrs)

    table[op] = spy  # in the table while recording: the program calls the spy
    try:
        step, model = _training_step(M.LeNet, opt_class, **opt_args)
        traced = trace(step, symbolic=True)
        x, y = (P.Tensor(a) for a in _batches(1)[0])
        traced(x, y), traced(x, y)  # the first call creates the optimizer state
    finally:
        table[op] = real
    assert len(traced.programs) == 1
    count = len(list(model.parameters()))
    optimizer_code = str(Path(optim.__file__).parent)
    ran = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(optimizer_code):
            ran.append(frame.f_code.co_name)

    calls.clear()
    sys.setprofile(profile)
    try:
        for _ in range(3):
            traced(x, y)
    finally:
        sys.setprofile(None)
    # The one optimizer function a replay calls reads the hyper-parameters it checks (its
    # comprehensions are frames too on older Pythons); no update code runs.
    assert ran.count("_hyperparameters") == 3
    assert set(ran) <= {"_hyperparameters", "<listcomp>", "<dictcomp>"}, ran
    assert calls == [2] * count + [3] * count + [4] * count
    assert [s["step"].item() for s in _optimizer_of(step)._state.values()] == [5] * count


def _optimizer_of(step) -> optim.Optimizer:
    opt, = (c.cell_contents for c in step.__closure__
            if isinstance(c.cell_contents, optim.Optimizer))
    return opt


@pytest.mark.parametrize("opt_class, opt_args", OPTIMIZERS[:2])
def test_a_changed_learning_rate_traces_the_step_again(opt_class, opt_args):
    """The learning rate is an attribute of the recorded update kernels: a replay that finds
    it changed (a scheduler's milestone) records the step again, before it changes anything."""
    eager, eager_model = _training_step(M.LeNet, opt_class, **opt_args)
    step, traced_model = _training_step(M.LeNet, opt_class, **opt_args)
    traced = trace(step, symbolic=True)
    schedulers = [optim.MultiStepLR(_optimizer_of(s), milestones=[4], gamma=0.1)
                  for s in (eager, step)]
    recorded = []
    for x, y in _batches(8):
        expected = eager(P.Tensor(x), P.Tensor(y)).numpy()
        got = traced(P.Tensor(x), P.Tensor(y)).numpy()
        assert got.tobytes() == expected.tobytes()
        recorded.append([id(p) for p in traced.programs.values()])
        for scheduler in schedulers:
            scheduler.step()
    assert _optimizer_of(step).param_groups[0]["lr"] == pytest.approx(opt_args["lr"] / 10)
    first, second = recorded[1][0], recorded[4][0]
    assert recorded[1:4] == [[first]] * 3 and first != second  # recorded again at the change
    assert recorded[4:] == [[second]] * 4  # ...and replayed since
    for (name, a), (_, b) in zip(eager_model.named_parameters(), traced_model.named_parameters()):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), name


def test_a_new_input_shape_traces_again_and_each_shape_replays_its_own_program():
    eager, eager_model = _training_step(M.LeNet, optim.SGD, lr=0.05)
    step, traced_model = _training_step(M.LeNet, optim.SGD, lr=0.05)
    for (name, a), (_, b) in zip(eager_model.named_parameters(), traced_model.named_parameters()):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), f"{name} starts apart"
    traced = trace(step)
    small, large = _batches(4, batch=4), _batches(4, batch=12, seed=1)
    for (xs, ys), (xl, yl) in zip(small, large):
        for x, y in ((xs, ys), (xl, yl)):
            expected = eager(P.Tensor(x), P.Tensor(y)).numpy()
            assert traced(P.Tensor(x), P.Tensor(y)).numpy().tobytes() == expected.tobytes()
    shapes = sorted(key[0][1] for key in traced.programs)
    assert shapes == [(4, 1, 32, 32), (12, 1, 32, 32)]


def test_batch_norm_running_statistics_are_updated_by_the_replay():
    eager, eager_model = _training_step(_ConvBN, optim.SGD, lr=0.05, momentum=0.9)
    step, traced_model = _training_step(_ConvBN, optim.SGD, lr=0.05, momentum=0.9)
    traced = trace(step)
    for x, y in _batches(6, batch=8):
        expected = eager(P.Tensor(x), P.Tensor(y)).numpy()
        assert traced(P.Tensor(x), P.Tensor(y)).numpy().tobytes() == expected.tobytes()
    assert len(traced.programs) == 1
    for name in ("running_mean", "running_var"):
        a, b = (np.asarray(getattr(m.bn, name)) for m in (eager_model, traced_model))
        assert a.tobytes() == b.tobytes()
        assert not np.allclose(b, 0.0 if name == "running_mean" else 1.0)  # it did move


def test_a_value_dependent_branch_is_an_error_in_symbolic_mode():
    @trace(symbolic=True)
    def clip(x):
        if (x.sum() > 0).item():
            return x * 2.0
        return x

    with pytest.raises(TraceError, match=r"symbolic=True.*reads the value of a traced tensor"):
        clip(P.Tensor([1.0, 2.0]))


def test_a_value_dependent_branch_that_changes_is_reported_by_the_replay():
    @trace
    def clip(x):
        if x.sum() > 0:
            return x * 2.0
        return -x

    np.testing.assert_array_equal(clip(P.Tensor([1.0, 2.0])).numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(clip(P.Tensor([3.0, 1.0])).numpy(), [6.0, 2.0])  # same branch
    with pytest.raises(TraceError, match=r"read a tensor's value.*\(True\).*computed False"):
        clip(P.Tensor([-3.0, 1.0]))


def test_non_tensor_arguments_are_part_of_the_signature():
    calls = []

    @trace
    def scale(x, factor):
        calls.append(factor)
        return x * factor

    x = P.Tensor([1.0, 2.0])
    np.testing.assert_array_equal(scale(x, 2.0).numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(scale(x, 3.0).numpy(), [3.0, 6.0])
    np.testing.assert_array_equal(scale(P.Tensor([5.0, 1.0]), 2.0).numpy(), [10.0, 2.0])
    assert calls == [2.0, 3.0]  # the third call replayed


def test_random_ops_draw_a_new_seed_each_replay_like_eager():
    def noisy(x):
        return F.nn.dropout(x, 0.5, training=True)

    x = P.Tensor(np.ones(64, np.float32))
    P.random.seed(3)
    expected = [noisy(x).numpy() for _ in range(3)]
    P.random.seed(3)
    traced = trace(noisy)
    got = [traced(x).numpy() for _ in range(3)]
    assert not np.array_equal(expected[1], expected[2])
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)


def test_index_arrays_computed_in_the_trace_are_taken_from_the_replay():
    embedding = M.Embedding(5, 3)

    @trace(symbolic=True)
    def lookup(ids, x):
        rows = embedding(ids)                 # the indices are an input
        best = x[F.argmax(x, axis=0) + 0]     # the indices are computed
        return rows, best

    for ids, x in (([0, 4, 4], [[1.0, 5.0], [3.0, 2.0], [0.0, 9.0]]),
                   ([2, 1, 3], [[7.0, 0.0], [1.0, 1.0], [2.0, 8.0]])):
        ids_t, x_t = P.Tensor(np.array(ids, np.int32)), P.Tensor(np.array(x, np.float32))
        rows, best = lookup(ids_t, x_t)
        np.testing.assert_array_equal(rows.numpy(), embedding.weight.numpy()[ids])
        x = np.array(x, np.float32)
        np.testing.assert_array_equal(best.numpy(), x[x.argmax(0)])
    assert len(lookup.programs) == 1


def test_ops_of_other_threads_are_not_recorded():
    other_results = []

    def elsewhere():
        a = P.Tensor([1.0, 2.0])
        other_results.append((a + a).numpy())

    @trace
    def double(x):
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
        return x + x

    double(P.Tensor([1.0, 1.0]))
    program = next(iter(double.programs.values()))
    assert [step.op for step in program.steps] == ["add"]
    np.testing.assert_array_equal(other_results[0], [2.0, 4.0])


def test_trace_as_a_decorator_with_options_and_on_methods():
    class Doubler:
        def __init__(self, factor):
            self.factor = P.Tensor(factor)

        @trace(symbolic=True)
        def __call__(self, x):
            return x * self.factor

    a, b = Doubler(2.0), Doubler(3.0)
    x = P.Tensor([1.0, 2.0])
    for _ in range(2):
        np.testing.assert_array_equal(a(x).numpy(), [2.0, 4.0])
        np.testing.assert_array_equal(b(x).numpy(), [3.0, 6.0])


def test_importing_plugrad_jit_imports_no_onnx():
    code = ("import sys, plugrad, plugrad.jit; "
            "assert 'onnx' not in sys.modules and 'onnxruntime' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_trace_called_while_another_thread_records_runs_eagerly_and_correctly():
    started, release = threading.Event(), threading.Event()

    @trace
    def slow(x):
        started.set()
        release.wait(10)
        return x * 2.0

    @trace
    def fast(x):
        return x + 1.0

    results = {}
    thread = threading.Thread(target=lambda: results.update(slow=slow(P.Tensor([1.0]))))
    thread.start()
    started.wait(10)
    results["fast"] = [fast(P.Tensor([1.0])).numpy() for _ in range(2)]
    release.set()
    thread.join()
    np.testing.assert_array_equal(results["slow"].numpy(), [2.0])
    assert [r.tolist() for r in results["fast"]] == [[2.0], [2.0]]
    assert not fast.programs  # it never recorded while slow did
    assert [step.op for step in next(iter(slow.programs.values())).steps] == ["mul"]


def test_a_random_op_replays_with_seeds_from_its_own_generator():
    def sample(x, rng):
        return x + rng.normal(size=(4,))

    x = P.Tensor(np.zeros(4, np.float32))
    expected_rng, traced_rng = P.random.RNG(11), P.random.RNG(11)
    expected = [sample(x, expected_rng).numpy() for _ in range(3)]
    traced = trace(sample)
    got = [traced(x, traced_rng).numpy() for _ in range(3)]
    assert len(traced.programs) == 1 and not np.array_equal(got[0], got[1])
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)


def test_a_host_drawn_permutation_is_refused():
    @trace
    def shuffled(x):
        return x[P.random.permutation(4)]

    with pytest.raises(TraceError, match="permutation draws on the host"):
        shuffled(P.Tensor(np.arange(4, dtype=np.float32)))


def test_the_replay_drops_large_activations_after_their_last_use():
    step, _ = _training_step(M.LeNet, optim.SGD, lr=0.01)
    traced = trace(step)
    x, y = (P.Tensor(a) for a in _batches(1, batch=64)[0])
    traced(x, y)
    program = next(iter(traced.programs.values()))
    freed = [s.out for s in program.steps if s.op == "<free>"]
    conv1 = next(s.out for s in program.steps if s.op == "conv2d_bias")
    assert conv1 in freed  # (64, 6, 28, 28) float32: 1.2 MB
    last_read = max(i for i, s in enumerate(program.steps) if conv1 in s.inputs)
    assert program.steps[last_read + 1].op == "<free>"
    assert [s.out for s in program.steps[last_read + 1:]].count(conv1) == 1


def test_gradients_rewritten_before_the_optimizer_step_are_replayed():
    def make():
        P.random.seed(0)
        model = M.LeNet()
        gm = GradManager().attach(model.parameters())
        opt = optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            with gm:
                loss = F.nn.cross_entropy(model(x), y)
                gm.backward(loss)
                optim.clip_grad_norm(model.parameters(), max_norm=0.5)
                opt.step().clear_grad()
            return loss
        return step

    eager, traced = make(), trace(make(), symbolic=True)
    for x, y in _batches(5, batch=8):
        expected = eager(P.Tensor(x), P.Tensor(y)).numpy()
        assert traced(P.Tensor(x), P.Tensor(y)).numpy().tobytes() == expected.tobytes()
    assert len(traced.programs) == 1


def test_a_module_traced_directly_reads_its_buffers_at_replay():
    P.random.seed(0)
    net = _ConvBN()
    traced = trace(net)
    x = P.Tensor(_batches(1, batch=4)[0][0])
    traced(x)  # training mode: the running statistics move on every call
    traced(x)
    after_two = net.bn.running_mean.numpy()
    P.random.seed(0)
    eager = _ConvBN()
    eager(x), eager(x)
    np.testing.assert_array_equal(after_two, eager.bn.running_mean.numpy())
    assert len(traced.programs) == 1


def test_a_traced_data_parallel_step_all_reduces_in_every_replay(tmp_path):
    pytest.importorskip("mpi4py")
    from plugrad.distributed.launcher import find_mpiexec

    out = tmp_path / "out.npz"
    program = Path(__file__).resolve().parent / "dp_traced.py"
    subprocess.run([find_mpiexec(), "-n", "2", sys.executable, str(program), str(out)],
                   check=True, timeout=300)
    with np.load(out) as saved:
        assert int(saved["world"]) == 2
        assert saved["traced"].tobytes() == saved["eager"].tobytes()
        assert bool(saved["same"])  # every parameter, bit for bit


def _updating_step(update, param: P.Tensor, buffer: P.Tensor):
    """What an optimizer's update op does through dispatch: one kernel call returns the
    parameter and the buffer, which are stored into their tensors."""

    def step(g):
        arrays = update(param._data, g._data, buffer._data)
        if dispatch.tracer is not None:
            dispatch.tracer.record("sgd_like_update", update, (param, g, buffer), {}, arrays,
                                   param.device)
        param._set_data(arrays[0])
        buffer._set_data(arrays[1])
        return param * 1.0

    return step


def test_a_kernel_with_several_outputs_writing_state_is_replayed():
    param = P.Parameter(np.array([1.0, 2.0], np.float32))
    buffer = P.Tensor(np.zeros(2, np.float32))

    def update(p, g, v):  # new arrays, as a backend without in-place writes returns
        v = v * 0.5 + g
        return p - 0.1 * v, v

    traced = trace(_updating_step(update, param, buffer))
    expected_p, expected_v = np.array([1.0, 2.0], np.float32), np.zeros(2, np.float32)
    for g in ([1.0, -1.0], [0.5, 0.5], [2.0, 0.0]):
        g = np.array(g, np.float32)
        expected_v = expected_v * 0.5 + g
        expected_p = expected_p - np.float32(0.1) * expected_v
        out = traced(P.Tensor(g))
        np.testing.assert_array_equal(out.numpy(), expected_p)
        np.testing.assert_array_equal(buffer.numpy(), expected_v)
    assert len(traced.programs) == 1
    assert "<output>" in [s.op for s in next(iter(traced.programs.values())).steps]


def test_arrays_an_update_kernel_writes_in_place_are_replayed_without_copy_steps():
    # The numpy backend's update ops write into the parameter and buffer and return them: the
    # replay's load of each already holds the array, so no step takes it out of the result
    # tuple or gives it back to its tensor.
    param = P.Parameter(np.array([1.0, 2.0], np.float32))
    buffer = P.Tensor(np.zeros(2, np.float32))

    def update(p, g, v):
        v *= 0.5
        v += g
        p -= np.float32(0.1) * v
        return p, v

    traced = trace(_updating_step(update, param, buffer))
    expected_p, expected_v = np.array([1.0, 2.0], np.float32), np.zeros(2, np.float32)
    for call, g in enumerate(([1.0, -1.0], [0.5, 0.5], [2.0, 0.0], [1.0, 1.0])):
        if call == 3:  # a new array bound to the parameter between calls (a loaded state)
            expected_p = np.array([5.0, 6.0], np.float32)
            param._set_data(expected_p.copy())
        g = np.array(g, np.float32)
        expected_v = expected_v * np.float32(0.5) + g
        expected_p = expected_p - np.float32(0.1) * expected_v
        out = traced(P.Tensor(g))
        np.testing.assert_array_equal(out.numpy(), expected_p)
        np.testing.assert_array_equal(param.numpy(), expected_p)
        np.testing.assert_array_equal(buffer.numpy(), expected_v)
    assert len(traced.programs) == 1
    ops = [s.op for s in next(iter(traced.programs.values())).steps]
    assert "<output>" not in ops and "<set data>" not in ops
    assert ops.count("<load>") == 2


def test_ops_on_constants_are_computed_once_when_recorded_and_random_draws_are_not():
    def shifted(x):
        offset = F.full((3,), 2.0) * 0.5 + P.Tensor([1.0, 2.0, 3.0])  # constants only
        noise = P.random.normal(size=(3,)) * 0.0 + 1.0  # a random draw stays a step
        return x + offset * noise

    traced = trace(shifted)
    for x in ([0.0, 0.0, 0.0], [1.0, -1.0, 0.5], [4.0, 4.0, 4.0]):
        np.testing.assert_array_equal(traced(P.Tensor(x)).numpy(),
                                      np.array(x, np.float32) + [2.0, 3.0, 4.0])
    program = next(iter(traced.programs.values()))
    ops = [s.op for s in program.steps]
    # The offset's full, mul and add are folded; what involves the draw or x stays.
    assert "full" not in ops and ops.count("normal") == 1
    assert ops.count("mul") == 2 and ops.count("add") == 2
