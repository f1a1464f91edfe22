"""Winograd F(2x2, 3x3) written in NumPy against the numpy backend's im2col kernels (conv.py),
on SmallVGG's stride-1 3x3 layers: measured, and rejected (conv.py's docstring has the numbers).

    PYTHONPATH=. python benchmarks/bench_winograd.py [--rounds 12] [--step-rounds 12] [--wide]

Three comparisons, each side interleaved with the other in rounds in one process:

1. the kernels on one thread (one BLAS thread, CPU time): the forward and the input gradient
   (for stride 1 the forward of ``g`` with the flipped, transposed weight) of each layer at
   batch 64 and 16, with each side's largest error against a float64 direct convolution
   (``--wide``: also 64 and 128 channels);
2. the same kernels split over the batch on 2 threads as the backend runs them (parallel.py);
3. the SmallVGG training step (benchmarks/vgg_step.py) with its stride-1 3x3 convolutions of
   at least 16 channels routed to Winograd or not; wall time, and CPU time when
   ``PLUGRAD_NUM_THREADS=1``.

Winograd computes each 2x2 output tile as ``A^T [(G w G^T) * (B^T d B)] A``: 16 GEMMs
``(O x C) @ (C x tiles)``, 2.25x fewer multiply-adds than im2col's GEMM, plus transforms that
are additions over whole arrays. The layout below is the fastest of those tried: a block of
samples is copied into four parity planes (padded pixel ``(2r+a, 2q+b)`` at ``(r, q)`` of plane
``(a, b)``) so that every addition is one long contiguous pass (views with short rows ran 2-4x
slower per element), tile rows carry one junk tile so the column transform is a flat shift,
and the output is laid out one parity plane at a time (one 6-D copy ran 3.5x slower).
"""
from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np
from timing import median_min_ms, time_rounds

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from plugrad.backends.numpy_backend import conv, parallel, pool  # noqa: E402
from plugrad.backends.numpy_backend._blas import scoped  # noqa: E402

#: SmallVGG's stride-1 3x3 layers: (in channels, out channels, height = width).
LAYERS = ((3, 16, 32), (16, 16, 32), (16, 32, 16), (32, 32, 16))
#: Wider layers (``--wide``), where Winograd's GEMM savings weigh more.
WIDE_LAYERS = ((64, 64, 8), (64, 64, 16), (128, 128, 8))
GEO = {"stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "groups": 1}
#: Bytes of one block's transformed input and GEMM output (8 samples of 16 channels at 32x32;
#: 16 samples ran 2.3x slower there, 4 as fast, 1-2 slower).
BLOCK_BYTES = 4608 * 1024
#: Channels in and out from which the step routes a layer to Winograd (3 -> 16: 2x slower).
MIN_CHANNELS = 16

_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))


def winograd_kernels(xp: Any) -> dict[str, Callable]:
    """``conv2d`` and ``conv2d_grad_input`` (3x3, stride 1, dilation 1, one group, padding
    0-2) as Winograd F(2x2, 3x3), closed over ``xp``."""
    as_strided = xp.lib.stride_tricks.as_strided
    g_matrix = xp.asarray(_G, dtype=xp.float64)

    def weight_transform(w, dt):
        """``G w G^T`` of every (O, C) pair, as 16 matrices ``(16, O, C)``."""
        o, c = w.shape[:2]
        u = xp.matmul(xp.matmul(g_matrix, xp.asarray(w, dtype=xp.float64)), g_matrix.T)
        return xp.ascontiguousarray(u.transpose(2, 3, 0, 1).reshape(16, o, c), dtype=dt)

    def parity_copies(pad, h, wd):
        """(a, b, plane rows, plane cols, first x row, first x col) of each parity plane."""
        copies = []
        for a in range(2):
            i0 = pad[0] + (a - pad[0]) % 2
            rows = len(range(i0, pad[0] + h, 2))
            for b in range(2):
                j0 = pad[1] + (b - pad[1]) % 2
                cols = len(range(j0, pad[1] + wd, 2))
                if rows and cols:
                    copies.append((a, b, slice(i0 // 2, i0 // 2 + rows),
                                   slice(j0 // 2, j0 // 2 + cols), i0 - pad[0], j0 - pad[1]))
        return copies

    def convolve(x, u, pad, oh, ow, out):
        """The stride-1 3x3 convolution of ``x`` with transformed weights ``u`` into ``out``."""
        n, c, h, wd = x.shape
        o = u.shape[1]
        dt = u.dtype
        it = dt.itemsize
        th, tw = -(-oh // 2), -(-ow // 2)
        plane = (th + 1) * (tw + 1)  # input plane per sample and parity
        tiles = th * (tw + 1)  # tiles per sample, one junk tile per tile row
        nb = conv._pick_block(n, 16 * (c + o) * tiles * it, BLOCK_BYTES)
        run = nb * tiles
        xsize = 4 * c * nb * plane
        xbuf = xp.zeros(xsize + tw + 2, dtype=dt)  # slack: shifted views read past the end
        xplanes = xbuf[:xsize].reshape(2, 2, c, nb, th + 1, tw + 1)
        rbuf = xp.empty(8 * c * run + 1, dtype=dt)  # row-transformed, (4, b, C, nb*tiles)
        rows = rbuf[:-1].reshape(4, 2, c, nb, tiles)
        v = xp.empty((4, 4, c, run), dtype=dt)
        m = xp.empty((16, o, run), dtype=dt)
        half = xp.empty((4, 2, o * run), dtype=dt)  # M A, the column half of A^T M A
        y = xp.empty((2, 2, o, nb, th, tw + 1), dtype=dt)

        def tile_rows(a, shift):  # rows 2t + 2*shift + a of every tile: (b, C, nb, tiles)
            return as_strided(xbuf[a * 2 * c * nb * plane + shift * (tw + 1):],
                              (2, c, nb, tiles),
                              (c * nb * plane * it, nb * plane * it, plane * it, it))

        def tile_cols(b, shift):  # columns 2u + 2*shift + b: (4, C*nb*tiles)
            return as_strided(rbuf[b * c * run + shift:], (4, c * run), (2 * c * run * it, it))

        d0, d1, d2, d3 = tile_rows(0, 0), tile_rows(1, 0), tile_rows(0, 1), tile_rows(1, 1)
        e0, e1, e2, e3 = tile_cols(0, 0), tile_cols(1, 0), tile_cols(0, 1), tile_cols(1, 1)
        vj = [v[:, j].reshape(4, c * run) for j in range(4)]
        mv, yv = m.reshape(4, 4, o * run), y.reshape(2, 2, o * run)
        copies = parity_copies(pad, h, wd)
        for first in range(0, n, nb):
            xs = x[first:first + nb].transpose(1, 0, 2, 3)
            for a, b, plane_rows, plane_cols, r0, c0 in copies:
                xplanes[a, b, :, :, plane_rows, plane_cols] = xs[:, :, r0::2, c0::2]
            # V = B^T d B, rows then columns (B^T's rows: d0-d2, d1+d2, d2-d1, d1-d3)
            xp.subtract(d0, d2, out=rows[0])
            xp.add(d1, d2, out=rows[1])
            xp.subtract(d2, d1, out=rows[2])
            xp.subtract(d1, d3, out=rows[3])
            xp.subtract(e0, e2, out=vj[0])
            xp.add(e1, e2, out=vj[1])
            xp.subtract(e2, e1, out=vj[2])
            xp.subtract(e1, e3, out=vj[3])
            xp.matmul(u, v.reshape(16, c, run), out=m)
            # Y = A^T M A, columns then rows (A^T's rows: m0+m1+m2, m1-m2-m3)
            xp.add(mv[:, 0], mv[:, 1], out=half[:, 0])
            half[:, 0] += mv[:, 2]
            xp.subtract(mv[:, 1], mv[:, 2], out=half[:, 1])
            half[:, 1] -= mv[:, 3]
            xp.add(half[0], half[1], out=yv[0])
            yv[0] += half[2]
            xp.subtract(half[1], half[2], out=yv[1])
            yv[1] -= half[3]
            block = out[first:first + nb]
            for a in range(2):
                for b in range(2):
                    dst = block[:, :, a::2, b::2].transpose(1, 0, 2, 3)
                    dst[...] = y[a, b, :, :, :dst.shape[2], :dst.shape[3]]
        return out

    def conv2d(x, w, b=None, *, stride, padding, dilation, groups, out=None):
        n, _, h, wd = x.shape
        oh, ow = h + 2 * padding[0] - 2, wd + 2 * padding[1] - 2
        if out is None:
            out = xp.empty((n, w.shape[0], oh, ow), dtype=x.dtype)
        convolve(x, weight_transform(w, x.dtype), padding, oh, ow, out)
        if b is not None:
            out += b
        return out

    def conv2d_grad_input(g, w, *, input_shape, stride, padding, dilation, groups, out=None):
        if out is None:
            out = xp.empty(tuple(input_shape), dtype=g.dtype)
        flipped = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
        return convolve(g, weight_transform(flipped, g.dtype),
                        (2 - padding[0], 2 - padding[1]), input_shape[2], input_shape[3], out)

    return {"conv2d": conv2d, "conv2d_bias": conv2d, "conv2d_grad_input": conv2d_grad_input}


def routed(x_shape: tuple, w: Any, attrs: dict, dtype: Any) -> bool:
    """Whether the step's variant sends a call to Winograd."""
    return (w.shape[2:] == (3, 3) and tuple(attrs["stride"]) == (1, 1)
            and tuple(attrs["dilation"]) == (1, 1) and attrs["groups"] == 1
            and all(p <= 2 for p in attrs["padding"]) and dtype.kind == "f"
            and dtype.itemsize >= 4 and min(x_shape[1], w.shape[0]) >= MIN_CHANNELS)


def reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The padding-1 3x3 convolution in float64, summed over kernel offsets."""
    n, _, h, wd = x.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((n, w.shape[0], h, wd))
    for i in range(3):
        for j in range(3):
            y += np.einsum("nchw,oc->nohw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j])
    return y


def tables() -> dict[str, dict[str, Callable]]:
    """The im2col kernels and the Winograd ones, unsplit and split over threads."""
    im2col = conv.kernels(np)
    wino = {**im2col, **winograd_kernels(np)}
    made = {}
    for name, table in (("im2col", im2col), ("winograd", wino)):
        made[name] = scoped(table)
        made[name + " split"] = scoped(parallel.split_kernels({**table, **pool.kernels(np)}, np))
    return made


def layer_calls(x: np.ndarray, w: np.ndarray, g: np.ndarray) -> dict[str, Callable]:
    """The forward and the input gradient of one layer, each a call on a kernel table."""
    return {"forward": lambda k: k["conv2d"](x, w, **GEO),
            "grad_input": lambda k: k["conv2d_grad_input"](g, w, input_shape=x.shape, **GEO)}


def kernel_rows(args: argparse.Namespace) -> None:
    made = tables()
    rng = np.random.default_rng(0)
    for split, clock in (("", "cpu"), (" split", "wall"), (" split", "cpu")):
        print(f"\n## kernels{split or ' on one thread'} ({clock} clock): median ms "
              "im2col -> winograd (ratio)" + ("; max error / max |y| vs float64" if not split
                                               else ""))
        for batch in (64, 16):
            for cin, cout, hw in LAYERS + (WIDE_LAYERS if args.wide else ()):
                x = rng.standard_normal((batch, cin, hw, hw), dtype=np.float32)
                w = (rng.standard_normal((cout, cin, 3, 3)) * 0.1).astype(np.float32)
                g = rng.standard_normal((batch, cout, hw, hw), dtype=np.float32)
                line = f"b{batch:<3d} {cin:>2d}->{cout:<2d} {hw}x{hw}"
                for op, call in layer_calls(x, w, g).items():
                    sides = {name: functools.partial(call, made[name + split])
                             for name in ("im2col", "winograd")}
                    times = time_rounds(sides, args.rounds * 3, warmup=2, per_round=3,
                                        settle=1, clock=_CLOCKS[clock])
                    old, new = (median_min_ms(times[s])[0] for s in ("im2col", "winograd"))
                    line += f"  {op} {old:6.2f} -> {new:6.2f} ({new / old:.2f}x)"
                    if not split:
                        want = (reference(x, w) if op == "forward" else
                                reference(g, w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]))
                        errors = [np.abs(sides[s]() - want).max() / np.abs(want).max()
                                  for s in sides]
                        if max(errors) > 1e-5:
                            raise AssertionError(f"{op} {line}: error {max(errors):.1e}")
                        line += f" err {errors[0]:.1e}/{errors[1]:.1e}"
                print(line, flush=True)


_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_USE_WINOGRAD = [False]


def route_step_convolutions() -> None:
    """Make the numpy plugin's table (built on first use) send the step's convolutions to
    Winograd while ``_USE_WINOGRAD[0]`` is set."""
    build = conv.kernels
    wino = winograd_kernels(np)

    def kernels(xp):
        table = build(xp)
        for name in ("conv2d", "conv2d_bias", "conv2d_grad_input"):
            table[name] = _router(table[name], wino[name], name == "conv2d_grad_input")
        return table

    conv.kernels = kernels


def _router(im2col: Callable, winograd: Callable, grad_input: bool) -> Callable:
    def run(a, w, *rest, **attrs):
        shape = attrs["input_shape"] if grad_input else a.shape
        use = _USE_WINOGRAD[0] and routed(shape, w, attrs, a.dtype)
        return (winograd if use else im2col)(a, w, *rest, **attrs)

    return run


def step_rows(args: argparse.Namespace) -> None:
    import vgg_step

    clock = "cpu" if os.environ.get("PLUGRAD_NUM_THREADS") == "1" else "wall"
    images, labels = vgg_step.make_batch(64)
    step = vgg_step.plugrad_step(vgg_step.initial_state(), images, labels)
    times: dict[str, list[float]] = {"im2col": [], "winograd": []}
    for _ in range(3):
        step()
    for _ in range(args.step_rounds):
        for name in times:
            _USE_WINOGRAD[0] = name == "winograd"
            step()
            for _ in range(5):
                start = _CLOCKS[clock]()
                step()
                times[name].append(_CLOCKS[clock]() - start)
    old, new = (statistics.median(times[s]) * 1e3 for s in times)
    print(f"\n## SmallVGG step, batch 64 ({clock} clock, PLUGRAD_NUM_THREADS="
          f"{os.environ.get('PLUGRAD_NUM_THREADS', 'default')}): im2col {old:.2f} ms, "
          f"winograd {new:.2f} ms ({new / old:.3f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--step-rounds", type=int, default=12)
    parser.add_argument("--step-only", action="store_true")
    parser.add_argument("--wide", action="store_true", help="also 64 and 128 channels")
    args = parser.parse_args()
    if not args.step_only:
        kernel_rows(args)
    route_step_convolutions()  # before the first op builds the plugin's kernel table
    step_rows(args)


if __name__ == "__main__":
    main()
