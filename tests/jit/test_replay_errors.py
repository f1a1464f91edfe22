"""A replay refuses what eager code refuses: index ranges are checked by the program itself, and
a kernel that fails in a replay is reported with its op, its layer and its input shapes."""
from __future__ import annotations

import re

import numpy as np
import pytest

import plugrad as P
import plugrad.functional as F
import plugrad.module as M
import plugrad.optimizer as optim
from plugrad.jit import trace
from tests.jit.test_jit_trace import _KernelCounter, _training_step


def _weights(model: M.Module) -> dict[str, bytes]:
    return {name: np.asarray(p).tobytes() for name, p in model.named_parameters()}


# 10 classes take the compiled loss where numba is installed (it checks labels itself), 40 take
# NumPy's, which would wrap a -1 to the last class: the program's check must catch both.
@pytest.mark.parametrize("classes", [10, 40])
@pytest.mark.parametrize("symbolic", [False, True])
@pytest.mark.parametrize("bad", ["negative", "past the end"])
def test_a_replay_refuses_out_of_range_labels_before_it_changes_any_state(classes, symbolic,
                                                                          bad):
    step, model = _training_step(lambda: M.Linear(6, classes), optim.SGD, lr=0.1, momentum=0.9)
    traced = trace(step, symbolic=symbolic)
    rng = np.random.default_rng(0)
    x = P.Tensor(rng.standard_normal((8, 6)).astype(np.float32))
    labels = rng.integers(0, classes, 8).astype(np.int32)
    traced(x, P.Tensor(labels)), traced(x, P.Tensor(labels))  # recorded, then replayed
    program = next(iter(traced.programs.values()))
    assert [s.op for s in program.steps].count("<check>") == 1

    labels[3] = -1 if bad == "negative" else classes
    logits = P.Tensor(rng.standard_normal((8, classes)).astype(np.float32))
    with pytest.raises(IndexError) as eager:
        F.nn.cross_entropy(logits, P.Tensor(labels))
    before = _weights(model)
    with _KernelCounter() as counter, \
            pytest.raises(IndexError, match=f"^{re.escape(str(eager.value))}$"):
        traced(x, P.Tensor(labels))
    assert counter.calls == 0  # the program refused: nothing ran through dispatch
    assert _weights(model) == before  # the check runs before the update kernels
    assert len(traced.programs) == 1


def test_an_index_the_traced_function_builds_itself_is_checked_once_when_it_is_recorded():
    @trace(symbolic=True)
    def encode(x):
        return x + F.nn.one_hot(P.Tensor(np.array([0, 2], np.int32)), 3)

    x = P.Tensor(np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(encode(x).numpy(), [[1, 0, 0], [0, 0, 1]])
    program = next(iter(encode.programs.values()))
    assert "<check>" not in [s.op for s in program.steps]  # a constant: the same every call

    @trace(symbolic=True)
    def encode_badly(x):
        return x + F.nn.one_hot(P.Tensor(np.array([0, 3], np.int32)), 3)

    with pytest.raises(IndexError, match=r"^one_hot: class index 3 is out of range"):
        encode_badly(x)  # the first call, which records, checks it


class _Lookup(M.Module):
    def forward(self, table, rows):
        return table[rows] * 2.0


def test_a_kernel_failing_in_a_replay_names_its_op_layer_and_input_shapes():
    traced = trace(_Lookup(), symbolic=True)
    table = P.Tensor(np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(traced(table, P.Tensor(np.array([0, 4], np.int32))).numpy(),
                                  [0.0, 8.0])
    with pytest.raises(IndexError) as caught:
        traced(table, P.Tensor(np.array([0, 7], np.int32)))
    message = str(caught.value)
    assert message.startswith("getitem: its kernel failed in a replay of a traced function "
                              "(traced in _Lookup (_Lookup)), on inputs [(5,) float32, (2,) "
                              "int32]: IndexError: ")
    assert "7" in message
    assert len(traced.programs) == 1
