"""What this installation can run on: versions, backends (loaded, not installed or failed, with
the reason), devices, the default device and op coverage.

``plugrad info --op NAME`` shows one op's declaration and, per device type, where its kernel
lives or that it runs through its decomposition.
"""
from __future__ import annotations

import argparse
import inspect
import platform
import sys
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from plugrad.core.plugins import BackendRecord

HELP = "versions, backends (loaded, not installed or failed), devices, op coverage"

#: How to install the library a built-in backend imports when its device is first probed.
INSTALL_HINTS = {"cupy": "pip install 'plugrad[cuda]'"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--op", metavar="NAME",
                        help="show one op's declaration and where each backend runs it")


def backend_state(record: BackendRecord) -> tuple[str, str | None]:
    """("loaded" | "not installed" | "failed", reason): a plugin that registered but whose every
    device type lacks its library is "not installed", with the command that installs it."""
    from plugrad.core import device, plugins

    if record.status != "loaded":
        return record.status, record.reason
    types = plugins.device_types()
    # Bounded: a plugin whose is_available() never returns is listed as timed out.
    patience = plugins.watchdog_seconds()
    probes = [device.probe_within(types[name], patience) for name in record.device_types
              if name in types]
    missing = [reason for ok, reason, _ in probes
               if not ok and reason and reason.startswith("ModuleNotFoundError")]
    if probes and len(missing) == len(probes):
        reason = missing[0].removeprefix("ModuleNotFoundError: ")
        hint = INSTALL_HINTS.get(record.name)
        return "not installed", f"{reason}; {hint}" if hint else reason
    return "loaded", None


def report() -> str:
    """A human-readable report of versions, backends, devices and op coverage."""
    import plugrad
    from plugrad.core import device, plugins, registry
    from plugrad.distributed.mpi import describe_mpi

    lines = [f"plugrad {plugrad.__version__}",
             f"python {platform.python_version()} ({sys.executable}), numpy {np.__version__}",
             "", "backends:"]
    records = plugins.backend_records()
    if not records:
        lines.append("  none found (is PLUGRAD_AUTOLOAD_BACKENDS=0 or PLUGRAD_BACKENDS set?)")
    for record in records:
        status, reason = backend_state(record)
        head = f"  {record.name:<10} {status:<14} {record.source}"
        if record.status == "loaded":
            head += f"  device types: {', '.join(record.device_types)}"
        if record.load_seconds is not None:
            head += f"  (load {_duration(record.load_seconds)})"
        lines.append(head)
        if reason:
            lines.append(f"             reason: {reason}")
    lines += ["", "devices:"]
    patience = plugins.watchdog_seconds()
    for name, device_type in plugins.device_types().items():
        available, reason, count = device.probe_within(device_type, patience)
        state = f"{count} available" if available else f"unavailable: {reason}"
        lines.append(f"  {name:<6} backend {device_type.backend!r:<10} priority "
                     f"{device_type.priority:<3} {state}")
    lines.append("")
    lines.append(f"default device: {device.get_default_device()}")
    try:
        lines.append(f"xpux resolves to: {device.what_is_xpu()}")
    except RuntimeError as exc:
        lines.append(f"xpux resolves to: nothing ({exc})")
    lines += ["", "collectives (plugrad.distributed):", f"  mpi    {describe_mpi()}"]
    for name, device_type in plugins.device_types().items():
        factory = device_type.collectives
        how = ((factory.__doc__ or "its own").strip().splitlines()[0] if factory is not None
               else "through the host (to_host, MPI, from_host)")
        lines.append(f"  {name:<6} {how}")
    lines += ["", "op coverage (native / through a decomposition / missing primitives):"]
    total = len(registry.OPS)
    for name, device_type in plugins.device_types().items():
        if not device._probe(device_type)[0]:
            # Loading kernels may import the device's library; the reason is listed above.
            lines.append(f"  {name:<6} not loaded: the device type is unavailable")
            continue
        try:
            cover = registry.coverage(device_type)
        except Exception as exc:  # a kernel table that fails to load is reported, not raised
            lines.append(f"  {name:<6} kernels failed to load: {type(exc).__name__}: {exc}")
            continue
        lines.append(f"  {name:<6} {len(cover['native'])}/{total} native, "
                     f"{len(cover['decomposed'])} decomposed, "
                     f"{len(cover['missing'])} missing"
                     + (f": {', '.join(cover['missing'])}" if cover["missing"] else ""))
        if cover["decomposed"]:
            lines.append(f"         decomposed: {', '.join(cover['decomposed'])}")
    lines += ["", conv_engine_line(), compiled_kernels_line(), *blas_lines()]
    lines += ["", "one op's declaration and kernels: plugrad info --op NAME"]
    return "\n".join(lines)


def where(fn: Callable[..., Any] | None) -> str:
    """``module:qualname`` of a function (through wrappers such as functools.wraps)."""
    if fn is None:
        return "none"
    fn = inspect.unwrap(fn)
    target = getattr(fn, "func", fn)  # functools.partial
    module = getattr(target, "__module__", None) or type(target).__module__
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    name = getattr(target, "__name__", qualname)
    # A generic wrapper renamed after what it wraps (the numpy backend's array-result one).
    renamed = f" ({name})" if name != qualname.rsplit(".", 1)[-1] else ""
    return f"{module}:{qualname}{renamed}"


def _kernels(op: Any) -> list[str]:
    """Per device type: the native kernel, the decomposition, or the missing primitive."""
    from plugrad.core import device, plugins, registry

    lines = []
    for name, device_type in plugins.device_types().items():
        label = f"  {name:<6} ({device_type.backend})"
        if not device._probe(device_type)[0]:
            lines.append(f"{label} not loaded: the device type is unavailable")
            continue
        try:
            kernel = registry.dispatch_table(device_type).get(op.name)
        except Exception as exc:  # a kernel table that fails to load is reported, not raised
            lines.append(f"{label} kernels failed to load: {type(exc).__name__}: {exc}")
            continue
        if kernel is not None:
            lines.append(f"{label} native      {where(kernel)}")
        elif op.primitive:
            lines.append(f"{label} MISSING     a backend must implement every primitive")
        else:
            lines.append(f"{label} decomposed  {where(op.decomposition)}")
    return lines


def op_report(name: str) -> str:
    """One op's declaration (an alias finds its op) and where each device type runs it."""
    from plugrad.core import registry

    op = registry.lookup(name)
    kind = "primitive: every backend implements it" if op.primitive else \
        "composite: a backend may fuse it, otherwise its decomposition runs"
    lines = [f"{op.name} ({kind})"]
    if name != op.name:
        lines.append(f"  {name!r} is another name for {op.name!r}")
    signature = op.signature
    lines.append(f"  kernel:        {op.name}({signature.text})")
    inputs = [f"{i} (optional)" if i in signature.optional else
              f"*{i} (any number)" if signature.variadic and i == signature.inputs[-1] else i
              for i in signature.inputs]
    lines.append(f"  inputs:        {', '.join(inputs) or 'none'}")
    attrs = [f"{a.name}: {a.type}" + (f" = {a.default}" if a.default is not None else "")
             for a in signature.attrs]
    lines.append(f"  attributes:    {', '.join(attrs) or 'none'}")
    lines.append(f"  returns:       {op.doc}")
    lines.append(f"  shape rule:    {where(op.rule)}")
    lines.append(f"  reference:     "
                 f"{where(op.reference) if op.reference else 'none (checked by its statistics)'}")
    if not op.differentiable:
        gradient = "none (no gradient flows)"
    elif op.vjp is not None:
        gradient = where(op.vjp)
    else:
        gradient = "through its decomposition"
    lines.append(f"  vjp:           {gradient}")
    if not op.primitive:
        lines.append(f"  decomposition: {where(op.decomposition)}")
    if op.aliases:
        lines.append(f"  also called:   {', '.join(op.aliases)}")
    lines += ["", "kernels:"] + _kernels(op)
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def conv_engine_line() -> str:
    """Which kernels run the numpy backend's float32 convolutions."""
    from plugrad.backends.numpy_backend import ort_conv

    if ort_conv.available():
        block = ort_conv.nchwc_block()
        kind = f"MLAS's direct kernels in {block}-channel blocks" if block else "im2col"
        return (f"convolutions (cpu, float32): onnxruntime's ({kind}) for the forward and the "
                f"input gradient, and its GEMM for the weight gradient from "
                f"{ort_conv.MIN_CHANNELS} input channels ({ort_conv.ENGINE_VARIABLE}=numpy: "
                f"NumPy's only)")
    if ort_conv.turned_off():
        return f"convolutions (cpu): NumPy's ({ort_conv.ENGINE_VARIABLE}=numpy)"
    return "convolutions (cpu): NumPy's (pip install plugrad[onnx] for onnxruntime's, faster)"


def compiled_kernels_line() -> str:
    """Whether the numpy backend's memory-bound kernels run as compiled loops (compiled.py)."""
    from plugrad.backends.numpy_backend import compiled

    if compiled.available():
        return (f"batch norm, ReLU, 2x2 max pooling, one-channel conv weight gradients, "
                f"softmax cross-entropy, SGD updates (cpu, float32/float64): numba's compiled "
                f"loops ({compiled.VARIABLE}=0: NumPy's)")
    if compiled.turned_off():
        return f"batch norm, ReLU, max pooling (cpu): NumPy's ({compiled.VARIABLE}=0)"
    return ("batch norm, ReLU, max pooling (cpu): NumPy's (pip install plugrad[numba] for "
            "compiled loops, faster)")


def blas_lines() -> list[str]:
    """The BLAS and OpenMP libraries loaded, with their thread counts now (threadpoolctl)."""
    from plugrad.backends.numpy_backend._blas import avx512_hint, blas_threads

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["BLAS: threadpoolctl is not installed (pip install threadpoolctl), so plugrad "
                "leaves BLAS threads alone and cannot list them"]
    scoped = blas_threads()
    lines = ["BLAS (threads: the process's setting; " + (
        f"plugrad's GEMM kernels use {scoped} while they run, PLUGRAD_BLAS_THREADS changes it):"
        if scoped else "plugrad's GEMM kernels use it too: PLUGRAD_BLAS_THREADS=0 or a "
                       "*_NUM_THREADS variable is set):")]
    libraries = threadpool_info()
    for library in libraries:
        layer = library.get("threading_layer")
        kernels = library.get("architecture")
        lines.append(f"  {library['internal_api']:<9} {library.get('version') or '?':<12} "
                     f"{library['num_threads']} threads{f' ({layer})' if layer else ''}"
                     f"{f', {kernels} kernels' if kernels else ''}  {library['filepath']}")
    if len(lines) == 1:
        lines.append("  none loaded")
    hint = avx512_hint(libraries)
    return lines if hint is None else [*lines, f"  {hint}"]


def run(args: argparse.Namespace) -> int:
    if args.op is None:
        print(report())
        return 0
    try:
        print(op_report(args.op))
    except KeyError as exc:
        print(f"plugrad info: {exc.args[0]}", file=sys.stderr)
        return 2
    return 0
