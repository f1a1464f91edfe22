"""``plugrad info``: what this installation can run on, and why a backend did not load."""
from __future__ import annotations

import platform
import sys

import numpy as np


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
        head = f"  {record.name:<10} {record.status:<7} {record.source}"
        if record.status == "loaded":
            head += f"  device types: {', '.join(record.device_types)}"
        lines.append(head)
        if record.reason:
            lines.append(f"             reason: {record.reason}")
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
    return "\n".join(lines)


def main(args: list[str]) -> int:
    print(report())
    return 0
