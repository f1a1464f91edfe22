"""A traced program as an ONNX model: each recorded op becomes one or a few ONNX nodes.

Only the ops the outputs depend on are exported. State the program loads (parameters, buffers)
and constants become initializers. Imported by ``trace.dump`` only: ``import plugrad`` never
imports onnx.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from plugrad.jit.program import Program
from plugrad.jit.recorder import Step

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("trace.dump writes ONNX and needs the onnx package: "
                      "pip install \"plugrad[onnx]\"") from exc

__all__ = ["ONNX_OPS", "to_onnx"]

MIN_OPSET = 17


class _Graph:
    """The nodes, initializers and names of the model being built."""

    def __init__(self, program: Program, opset: int):
        self.program = program
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, slot: int) -> str:
        return f"v{slot}"

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def node(self, op_type: str, inputs: list[str], output: str | None = None,
             **attributes: Any) -> str:
        output = output or self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attributes))
        return output

    def constant(self, value: Any, hint: str = "const") -> str:
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def int64s(self, values: Any) -> str:
        return self.constant(np.asarray(values, dtype=np.int64), "shape")

    def reduce(self, op_type: str, x: str, axes: Any, keepdims: bool, out: str) -> str:
        """ReduceSum takes its axes as an input since opset 13, the others since opset 18."""
        keep = int(bool(keepdims))
        if axes is None:
            return self.node(op_type, [x], out, keepdims=keep)
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [x, self.int64s(list(axes))], out, keepdims=keep)
        return self.node(op_type, [x], out, axes=list(axes), keepdims=keep)


Handler = Callable[[_Graph, Step, list[str], str], None]


def _simple(op_type: str, **fixed: Any) -> Handler:
    def emit(g: _Graph, step: Step, ins: list[str], out: str) -> None:
        g.node(op_type, ins, out, **fixed)
    return emit


def _ne(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    g.node("Not", [g.node("Equal", ins)], out)


def _log1p(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    one = g.constant(np.ones((), g.program.specs[step.inputs[0]][1]))
    g.node("Log", [g.node("Add", [ins[0], one])], out)


def _gelu(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    dtype = g.program.specs[step.inputs[0]][1]
    scaled = g.node("Mul", [ins[0], g.constant(np.array(1 / math.sqrt(2), dtype))])
    cdf = g.node("Add", [g.node("Erf", [scaled]), g.constant(np.ones((), dtype))])
    g.node("Mul", [g.node("Mul", [ins[0], cdf]), g.constant(np.array(0.5, dtype))], out)


def _cast(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    g.node("Cast", ins, out, to=helper.np_dtype_to_tensor_dtype(np.dtype(step.attrs["dtype"])))


def _softmax(op_type: str) -> Handler:
    def emit(g: _Graph, step: Step, ins: list[str], out: str) -> None:
        g.node(op_type, ins, out, axis=int(step.attrs["axis"]))
    return emit


def _reduction(op_type: str) -> Handler:
    def emit(g: _Graph, step: Step, ins: list[str], out: str) -> None:
        g.reduce(op_type, ins[0], step.attrs["axis"], step.attrs["keepdims"], out)
    return emit


def _arg(op_type: str) -> Handler:
    def emit(g: _Graph, step: Step, ins: list[str], out: str) -> None:
        x, axis, keepdims = ins[0], step.attrs["axis"], int(bool(step.attrs["keepdims"]))
        if axis is None:
            x, axis = g.node("Reshape", [x, g.int64s([-1])]), 0
        elif not isinstance(axis, int):
            (axis,) = axis
        index = g.node(op_type, [x], axis=int(axis), keepdims=keepdims)
        g.node("Cast", [index], out, to=TensorProto.INT32)  # plugrad's indices are int32
    return emit


def _reshape(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    g.node("Reshape", [ins[0], g.int64s(g.program.specs[step.out][0])], out)


def _broadcast_to(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    g.node("Expand", [ins[0], g.int64s(step.attrs["shape"])], out)


def _transpose(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    g.node("Transpose", ins, out, perm=list(step.attrs["perm"]))


def _concat(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    g.node("Concat", ins, out, axis=int(step.attrs["axis"]))


def _linear(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    if len(g.program.specs[step.inputs[0]][0]) == 2:
        g.node("Gemm", ins, out, transB=1)
        return
    product = g.node("MatMul", [ins[0], g.node("Transpose", [ins[1]], perm=[1, 0])])
    if len(ins) == 2:
        g.node("Identity", [product], out)
    else:
        g.node("Add", [product, ins[2]], out)


def _conv(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    attrs = step.attrs
    (ph, pw) = attrs["padding"]
    inputs = ins[:2]
    if len(ins) == 3:  # plugrad's conv bias is shaped to broadcast; ONNX's is one per channel
        inputs.append(g.node("Reshape", [ins[2], g.int64s([-1])]))
    g.node("Conv", inputs, out, strides=list(attrs["stride"]), pads=[ph, pw, ph, pw],
           dilations=list(attrs["dilation"]), group=int(attrs["groups"]))


def _conv_transpose(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    """conv2d_grad_input, which ConvTranspose2d runs: ONNX's ConvTranspose, same weight layout."""
    attrs = step.attrs
    (ph, pw), (sh, sw), (dh, dw) = attrs["padding"], attrs["stride"], attrs["dilation"]
    (_, _, h, w), (_, _, kh, kw) = (g.program.specs[s][0] for s in step.inputs[:2])
    target = attrs["input_shape"][2:]
    natural = ((h - 1) * sh - 2 * ph + dh * (kh - 1) + 1, (w - 1) * sw - 2 * pw + dw * (kw - 1) + 1)
    g.node("ConvTranspose", ins[:2], out, strides=[sh, sw], pads=[ph, pw, ph, pw],
           dilations=[dh, dw], group=int(attrs["groups"]),
           output_padding=[target[0] - natural[0], target[1] - natural[1]])


def _pool(op_type: str) -> Handler:
    def emit(g: _Graph, step: Step, ins: list[str], out: str) -> None:
        attrs = step.attrs
        (ph, pw) = attrs["padding"]
        extra = {}
        if "count_include_pad" in attrs:
            extra["count_include_pad"] = int(bool(attrs["count_include_pad"]))
        g.node(op_type, ins, out, kernel_shape=list(attrs["kernel_size"]),
               strides=list(attrs["stride"]), pads=[ph, pw, ph, pw], **extra)
    return emit


def _leaky_relu(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    g.node("LeakyRelu", ins, out, alpha=float(step.attrs["negative_slope"]))


def _pad(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    width = [tuple(pair) for pair in step.attrs["pad_width"]]
    pads = [before for before, _ in width] + [after for _, after in width]
    dtype = g.program.specs[step.inputs[0]][1]
    value = g.constant(np.array(step.attrs["value"], dtype))
    g.node("Pad", [ins[0], g.int64s(pads), value], out, mode="constant")


def _gather(g: _Graph, step: Step, ins: list[str], out: str) -> bool:
    """``x[..., ids, ...]`` with one integer array among full slices (an embedding) as Gather."""
    index = step.attrs["index"]
    arrays = [p for p, item in enumerate(index) if hasattr(item, "shape")]
    if len(arrays) != 1 or any(item != slice(None) for p, item in enumerate(index)
                               if p != arrays[0]) or index[arrays[0]].dtype.kind not in "iu":
        return False
    if len(ins) > 1:  # the indices are computed in the graph (an input, an op's output)
        ids = ins[1]
    else:
        array = index[arrays[0]]
        ids = g.constant(array.get() if hasattr(array, "get") else np.asarray(array), "index")
    g.node("Gather", [ins[0], ids], out, axis=arrays[0])
    return True


def _getitem(g: _Graph, step: Step, ins: list[str], out: str) -> None:
    """Basic indexing (ints and slices) as Slice, then Squeeze of the int axes; one integer
    array among full slices as Gather."""
    if _gather(g, step, ins, out):
        return
    index = step.attrs["index"]
    shape = g.program.specs[step.inputs[0]][0]
    if not all(isinstance(item, (int, slice)) and not isinstance(item, bool) for item in index):
        raise _unsupported(step, "None, Ellipsis, masks or several array indices")
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    for axis, item in enumerate(index):
        if isinstance(item, int):
            start = item % shape[axis]
            item = slice(start, start + 1, 1)
            squeeze.append(axis)
        start, stop, stride = item.indices(shape[axis])
        if stride < 0 and stop < 0:
            stop = -shape[axis] - 1  # ONNX reads a negative end as counted from the back
        starts.append(start)
        ends.append(stop)
        axes.append(axis)
        steps.append(stride)
    sliced = g.node("Slice", [ins[0], g.int64s(starts), g.int64s(ends), g.int64s(axes),
                              g.int64s(steps)], None if squeeze else out)
    if squeeze:
        g.node("Squeeze", [sliced, g.int64s(squeeze)], out)


ONNX_OPS: dict[str, Handler] = {
    **{op: _simple(onnx_op) for op, onnx_op in {
        "add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "maximum": "Max",
        "minimum": "Min", "eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater",
        "ge": "GreaterOrEqual", "logical_and": "And", "logical_or": "Or", "logical_xor": "Xor",
        "logical_not": "Not", "neg": "Neg", "abs": "Abs", "exp": "Exp", "log": "Log",
        "sqrt": "Sqrt", "sin": "Sin", "cos": "Cos", "tanh": "Tanh", "relu": "Relu",
        "sigmoid": "Sigmoid", "sign": "Sign", "where": "Where", "matmul": "MatMul",
        "copy": "Identity",
    }.items()},
    "ne": _ne, "log1p": _log1p, "gelu": _gelu, "leaky_relu": _leaky_relu, "cast": _cast,
    "softmax": _softmax("Softmax"), "logsoftmax": _softmax("LogSoftmax"),
    "sum": _reduction("ReduceSum"), "mean": _reduction("ReduceMean"),
    "max": _reduction("ReduceMax"), "min": _reduction("ReduceMin"),
    "prod": _reduction("ReduceProd"), "logsumexp": _reduction("ReduceLogSumExp"),
    "argmax": _arg("ArgMax"), "argmin": _arg("ArgMin"),
    "reshape": _reshape, "broadcast_to": _broadcast_to, "transpose": _transpose,
    "concat": _concat, "pad": _pad, "getitem": _getitem,
    "linear": _linear, "conv2d": _conv, "conv2d_bias": _conv,
    "conv2d_grad_input": _conv_transpose,
    "max_pool2d": _pool("MaxPool"), "avg_pool2d": _pool("AveragePool"),
}


def _unsupported(step: Step, what: str = "") -> NotImplementedError:
    caller = f" (called by {step.origin})" if step.origin else ""
    detail = f" for {what}" if what else ""
    return NotImplementedError(
        f"trace.dump: op {step.op!r}{caller} has no ONNX mapping{detail}; the exportable ops "
        f"are {', '.join(sorted(ONNX_OPS))}. Export the inference function (model.eval(), "
        f"no loss or backward), or rewrite that layer with exportable ops")


def _needed(program: Program, outputs: list[int]) -> list[Step]:
    """The op steps the outputs depend on, in program order."""
    producer = {step.out: step for step in program.steps if not step.op.startswith("<")}
    wanted, stack = set(), list(outputs)
    while stack:
        slot = stack.pop()
        step = producer.get(slot)
        if step is None or slot in wanted:
            continue
        wanted.add(slot)
        stack.extend(step.inputs)
    return [step for step in program.steps if step.out in wanted and producer[step.out] is step]


def _value_info(name: str, spec: tuple) -> onnx.ValueInfoProto:
    shape, dtype = spec
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)),
                                         list(shape))


def _names(given: list[str] | None, count: int, default: str, what: str) -> list[str]:
    if given is None:
        return [f"{default}_{i}" for i in range(count)]
    given = list(given)
    if len(given) != count or len(set(given)) != count:
        raise ValueError(f"trace.dump: {what} must be {count} distinct names, one per "
                         f"{'Tensor argument' if what == 'arg_names' else 'output'}; got {given}")
    return given


def to_onnx(program: Program, arg_names: list[str] | None, output_names: list[str] | None,
            opset: int, graph_name: str) -> onnx.ModelProto:
    """The ONNX model of ``program``, checked with ``onnx.checker``."""
    if opset < MIN_OPSET:
        raise ValueError(f"trace.dump: opset {opset} is too old; expected {MIN_OPSET} or later")
    outputs = [spec[0] for spec in program.outputs if spec is not None]
    g = _Graph(program, opset)
    names = dict(zip(program.inputs, _names(arg_names, len(program.inputs), "arg", "arg_names")))
    out_names = _names(output_names, len(outputs), "output", "output_names")
    steps = _needed(program, outputs)
    used = {slot for step in steps for slot in step.inputs} | set(outputs)
    for slot in sorted(used):
        if slot in program.loads or slot in program.constants:  # state: its value when dumping
            names[slot] = f"param_{slot}" if slot in program.loads else f"const_{slot}"
            g.initializers.append(numpy_helper.from_array(program.host_value(slot), names[slot]))
    for step in steps:
        handler = ONNX_OPS.get(step.op)
        if handler is None:
            raise _unsupported(step)
        names[step.out] = g.name(step.out)
        handler(g, step, [names[i] for i in step.inputs], names[step.out])
    graph_outputs = []
    for slot, name in zip(outputs, out_names):
        source = names.get(slot)
        if source is None:
            raise ValueError("trace.dump: an output of the traced function does not depend on "
                             "its inputs or parameters")
        g.node("Identity", [source], name)
        graph_outputs.append(_value_info(name, program.specs[slot]))
    graph = helper.make_graph(
        g.nodes, graph_name or "plugrad",
        [_value_info(names[s], program.specs[s]) for s in program.inputs],
        graph_outputs, g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="plugrad")
    onnx.checker.check_model(model, full_check=True)
    return model
