"""Every op is declared once: signature, shape/dtype rule, reference, one name (or an alias)."""
from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

import plugrad.functional as F
from plugrad import Tensor
from plugrad.core.registry import ALIASES, OPS, Signature, Spec, lookup

F32, I32 = np.dtype("float32"), np.dtype("int32")


def test_a_signature_is_parsed_from_python_parameter_syntax():
    sig = Signature.parse("x, w, b=None, *, stride: tuple[int, int], eps: float = 1e-5")
    assert sig.inputs == ("x", "w", "b") and sig.optional == ("b",) and not sig.variadic
    assert [(a.name, a.type, a.default) for a in sig.attrs] == [
        ("stride", "tuple[int, int]", None), ("eps", "float", "1e-05")]
    many = Signature.parse("*xs, axis: int")
    assert many.inputs == ("xs",) and many.variadic and many.attrs[0].name == "axis"
    with pytest.raises(ValueError, match=r"attributes \['axis'\] need a type annotation"):
        Signature.parse("x, *, axis")
    with pytest.raises(ValueError, match="is not a Python parameter list"):
        Signature.parse("x y")


@pytest.mark.parametrize("name", sorted(OPS))
def test_the_reference_takes_exactly_the_declared_signature(name):
    op = OPS[name]
    if op.reference is None:  # random ops: checked by their statistics
        assert name in ("uniform", "normal", "dropout")
        return
    params = inspect.signature(op.reference).parameters.values()
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                                       p.VAR_POSITIONAL)]
    keywords = [p.name for p in params if p.kind == p.KEYWORD_ONLY]
    assert tuple(positional) == op.signature.inputs
    assert keywords == [a.name for a in op.signature.attrs]


# Shapes and dtypes inferred by the rules alone (no kernel), against the ops' real results.
RULE_CASES = [
    ("conv2d", [(2, 3, 9, 8), (4, 3, 3, 2)],
     dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=1), (2, 4, 5, 6)),
    ("max_pool2d", [(1, 2, 7, 6)], dict(kernel_size=(3, 2), stride=(2, 2), padding=(1, 0)),
     (1, 2, 4, 3)),
    ("linear", [(5, 2, 3), (4, 3)], {}, (5, 2, 4)),
    ("sum", [(2, 3, 4)], dict(axis=(0, 2), keepdims=True), (1, 3, 1)),
    ("matmul", [(2, 1, 2, 3), (4, 3, 5)], {}, (2, 4, 2, 5)),
    ("concat", [(2, 1), (2, 3)], dict(axis=1), (2, 4)),
    ("add", [(3, 1), (4,)], {}, (3, 4)),
    ("pad", [(2, 3)], dict(pad_width=((1, 0), (2, 2)), value=0.0), (3, 7)),
]


@pytest.mark.parametrize("name, shapes, attrs, expected", RULE_CASES,
                         ids=[case[0] for case in RULE_CASES])
def test_a_rule_infers_the_shape_a_kernel_returns(name, shapes, attrs, expected):
    spec = OPS[name].rule(*[Spec(s, F32) for s in shapes], **attrs)
    assert spec == (expected, F32)
    from plugrad.core.dispatch import apply

    inputs = [Tensor(np.ones(s, np.float32)) for s in shapes]
    out = apply(name, *inputs, **attrs)  # the kernel itself, not the rule
    assert out.shape == expected and out._data.dtype == F32


def test_rules_give_the_result_dtype_of_comparisons_casts_and_indices():
    x = Spec((2, 3), F32)
    assert OPS["lt"].rule(x, x) == ((2, 3), np.dtype(bool))
    assert OPS["cast"].rule(x, dtype=I32) == ((2, 3), I32)
    assert OPS["argmax"].rule(x, axis=1, keepdims=True) == ((2, 1), I32)
    assert OPS["softmax_cross_entropy"].rule(x, Spec((2,), I32), axis=1) == ((2,), F32)
    assert OPS["getitem"].rule(Spec((4, 5), F32), index=(slice(1, 3), None, 2)) == ((2, 1), F32)


def test_rules_refuse_bad_calls_naming_the_op():
    with pytest.raises(TypeError, match=r"exp: expected floating tensors; got int32; cast with "):
        OPS["exp"].rule(Spec((2,), I32))
    with pytest.raises(TypeError, match="add: y must have x's dtype float32; got int32"):
        OPS["add"].rule(Spec((2,), F32), Spec((2,), I32))
    with pytest.raises(ValueError, match=r"add: shapes \(2,\) and \(3,\) cannot be broadcast"):
        OPS["add"].rule(Spec((2,), F32), Spec((3,), F32))
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\)"):
        OPS["reshape"].rule(Spec((2, 3), F32), shape=(4, 2))
    with pytest.raises(ValueError, match=r"max: cannot reduce an empty tensor of shape \(0, 3\) "
                                         r"over axes \(0,\)"):
        OPS["max"].rule(Spec((0, 3), F32), axis=(0,), keepdims=False)
    # Reducing the non-empty axis of an empty tensor is fine, as in NumPy.
    assert OPS["max"].rule(Spec((0, 3), F32), axis=(1,), keepdims=False) == ((0,), F32)


def test_the_front_end_reports_what_the_rule_finds():
    with pytest.raises(ValueError, match=r"conv2d: the input has 2 channels \(shape \(1, 2, 5, "
                                         r"5\)\) but the weight of shape \(4, 3, 3, 3\)"):
        F.conv2d(Tensor(np.ones((1, 2, 5, 5))), Tensor(np.ones((4, 3, 3, 3))))
    with pytest.raises(ValueError, match="max_pool2d: the input's spatial size"):
        F.max_pool2d(Tensor(np.ones((1, 1, 2, 2))), 3)
    with pytest.raises(ValueError, match=r"max_pool2d: expected a 4-D input \(N, C, H, W\); got "
                                         r"shape \(1, 4, 4\); add a batch axis"):
        F.max_pool2d(Tensor(np.ones((1, 4, 4))), 2)
    with pytest.raises(TypeError, match="where: expected bool mask; got int32"):
        F.where(Tensor([1, 0]), Tensor([1.0, 2.0]), 0.0)
    with pytest.raises(ValueError, match="linear: the input's last axis must be in_features = 3"):
        F.linear(Tensor(np.ones((2, 4))), Tensor(np.ones((5, 3))))
    with pytest.raises(TypeError, match="neg: expected numeric tensors; got bool"):
        F.neg(Tensor([True, False]))


def test_one_name_per_op_and_an_explicit_alias_table():
    assert set(ALIASES.values()) <= set(OPS)
    assert not set(ALIASES) & set(OPS), "an alias must not shadow an op's own name"
    assert lookup("equal") is OPS["eq"] and lookup("astype") is OPS["cast"]
    assert lookup("cast").aliases == ["astype"]
    with pytest.raises(KeyError, match="no op is called 'softmx'; did you mean softmax"):
        lookup("softmx")
    from plugrad.conformance.table import OpRecord

    record = OpRecord("astype", F.astype, None, None, ("float32",), name="astype-probe")
    assert record.op == "cast" and record.reference is OPS["cast"].reference


def test_plugrad_info_op_prints_the_declaration_of_an_alias():
    done = subprocess.run([sys.executable, "-m", "plugrad", "info", "--op", "astype"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "cast (primitive: every backend implements it)"
    assert "  'astype' is another name for 'cast'" in lines
    assert "  kernel:        cast(x, *, dtype: numpy.dtype)" in lines
    cast = "plugrad.backends.numpy_backend.kernels:_elementwise.<locals>.cast"
    assert any(line.split() == ["cpu", "(numpy)", "native", cast] for line in lines)
    unknown = subprocess.run([sys.executable, "-m", "plugrad", "info", "--op", "conv3d"],
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "no op is called 'conv3d'; did you mean conv2d" in \
        unknown.stderr
