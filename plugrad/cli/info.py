"""What this installation can run on: versions, backends (loaded, not installed or failed, with
the reason), devices, the default device and op coverage."""
from __future__ import annotations

import argparse
import platform
import sys
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from plugrad.core.plugins import BackendRecord

HELP = "versions, backends (loaded, not installed or failed), devices, op coverage"

#: How to install the library a built-in backend imports when its device is first probed.
INSTALL_HINTS = {"cupy": "pip install 'plugrad[cuda]'"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def backend_state(record: BackendRecord) -> tuple[str, str | None]:
    """("loaded" | "not installed" | "failed", reason): a plugin that registered but whose every
    device type lacks its library is "not installed", with the command that installs it."""
    from plugrad.core import device, plugins

    if record.status != "loaded":
        return record.status, record.reason
    types = plugins.device_types()
    probes = [device._probe(types[name]) for name in record.device_types if name in types]
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
        lines.append(head)
        if reason:
            lines.append(f"             reason: {reason}")
    lines += ["", "devices:"]
    for name, device_type in plugins.device_types().items():
        available, reason, count = device._probe(device_type)
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
    lines += ["", *blas_lines()]
    return "\n".join(lines)


def blas_lines() -> list[str]:
    """The BLAS and OpenMP libraries loaded, with their thread counts now (threadpoolctl)."""
    from plugrad.backends.numpy_backend._blas import blas_threads

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
    for library in threadpool_info():
        layer = library.get("threading_layer")
        lines.append(f"  {library['internal_api']:<9} {library.get('version') or '?':<12} "
                     f"{library['num_threads']} threads{f' ({layer})' if layer else ''}  "
                     f"{library['filepath']}")
    if len(lines) == 1:
        lines.append("  none loaded")
    return lines


def run(args: argparse.Namespace) -> int:
    print(report())
    return 0
