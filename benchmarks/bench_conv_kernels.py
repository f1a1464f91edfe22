"""Time the conv / pool kernels on LeNet's layers (batch 64) against PyTorch CPU.

    PYTHONPATH=. python benchmarks/bench_conv_kernels.py [--batch 64] [--rounds 15]
    PYTHONPATH=. python benchmarks/bench_conv_kernels.py --explore   # alternatives
    PYTHONPATH=. python benchmarks/bench_conv_kernels.py --engines   # NumPy vs onnxruntime
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_conv_kernels.py

Each op is timed in interleaved rounds (ours, torch, ours, ...) so that drift
of a shared machine hits both sides alike; the table shows the median and the
minimum per call in ms.  torch is optional (used only here, never by the
package): ``torch.set_num_threads(2)`` unless ``--torch-threads`` says
otherwise; NumPy's BLAS uses its own threads (OpenBLAS: all cores unless
``OPENBLAS_NUM_THREADS`` is set).  On the 2-vCPU VM this was written on,
two-thread OpenBLAS GEMMs sometimes stall for milliseconds (medians 10x the
minimum) while single-threaded OpenBLAS is stable and about as fast, so run
both ways.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from timing import import_torch, median_min_ms, time_rounds

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from plugrad.backends.numpy_backend import conv as conv_mod  # noqa: E402
from plugrad.backends.numpy_backend import pool as pool_mod  # noqa: E402

torch = import_torch()
if torch is not None:
    import torch.nn.functional as F


def timeit_interleaved(fns: dict, rounds: int, inner: int = 5) -> dict:
    """name -> (median_ms, min_ms), calls interleaved across fns in rounds of ``inner``."""
    times = time_rounds(fns, rounds * inner, warmup=2, per_round=inner, settle=0)
    return {name: median_min_ms(values) for name, values in times.items()}


LENET = [  # name, x shape, w shape (None: 2x2 max pool)
    ("conv1", (1, 32, 32), (6, 1, 5, 5)),
    ("pool1", (6, 28, 28), None),
    ("conv2", (6, 14, 14), (16, 6, 5, 5)),
    ("pool2", (16, 10, 10), None),
]

GEO = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
PGEO = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))


def layer_ops(name, xs, ws, batch, ck, pk, rng):
    """Return [(op, ours_fn, torch_fn or None)] for one layer."""
    x = rng.standard_normal((batch, *xs), dtype=np.float32)
    if ws is not None:
        w = rng.standard_normal(ws, dtype=np.float32) * 0.1
        y = ck["conv2d"](x, w, **GEO)
        g = rng.standard_normal(y.shape, dtype=np.float32)
        ours = {
            "fwd": lambda: ck["conv2d"](x, w, **GEO),
            "grad_weight": lambda: ck["conv2d_grad_weight"](g, x, weight_shape=w.shape, **GEO),
            "grad_input": lambda: ck["conv2d_grad_input"](g, w, input_shape=x.shape, **GEO),
        }
        theirs = {}
        if torch is not None:
            tx, tw, tg = (torch.from_numpy(a) for a in (x, w, g))
            bw = torch.ops.aten.convolution_backward

            def tbwd(mask):
                return lambda: bw(tg, tx, tw, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask)

            theirs = {
                "fwd": lambda: F.conv2d(tx, tw),
                "grad_weight": tbwd([False, True, False]),
                "grad_input": tbwd([True, False, False]),
            }
            # correctness cross-check against torch
            np.testing.assert_allclose(ours["fwd"](), theirs["fwd"]().numpy(), rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(ours["grad_weight"](), theirs["grad_weight"]()[1].numpy(),
                                       rtol=1e-3, atol=1e-2)
            np.testing.assert_allclose(ours["grad_input"](), theirs["grad_input"]()[0].numpy(),
                                       rtol=1e-4, atol=1e-4)
    else:
        y = pk["max_pool2d"](x, **PGEO)
        g = rng.standard_normal(y.shape, dtype=np.float32)
        ours = {
            "fwd": lambda: pk["max_pool2d"](x, **PGEO),
            "grad": lambda: pk["max_pool2d_grad"](g, x, y, **PGEO),
        }
        theirs = {}
        if torch is not None:
            tx, tg = torch.from_numpy(x), torch.from_numpy(g)
            ty, ti = torch.ops.aten.max_pool2d_with_indices(tx, [2, 2], [2, 2])
            bw = torch.ops.aten.max_pool2d_with_indices_backward
            theirs = {
                # what autograd runs in training: forward with indices, backward by indices
                "fwd": lambda: torch.ops.aten.max_pool2d_with_indices(tx, [2, 2], [2, 2]),
                "grad": lambda: bw(tg, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, ti),
            }
            np.testing.assert_array_equal(ours["fwd"](), ty.numpy())
            np.testing.assert_array_equal(ours["grad"](), theirs["grad"]().numpy())
    return [(op, ours[op], theirs.get(op)) for op in ours]


def main_table(args):
    rng = np.random.default_rng(0)
    ck, pk = conv_mod.kernels(np), pool_mod.kernels(np)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default (all cores)")
    print(f"numpy {np.__version__} (OPENBLAS_NUM_THREADS={blas}), batch {args.batch}, float32"
          + (f", torch {torch.__version__} threads={torch.get_num_threads()}" if torch else
             ", torch not importable"))
    head = f"{'layer':6s} {'op':12s} {'ours med':>9s} {'ours min':>9s}"
    if torch:
        head += f" {'torch med':>9s} {'torch min':>9s} {'ratio':>6s}"
    print(head)
    tot_o = tot_t = 0.0
    train_o = train_t = 0.0
    for name, xs, ws in LENET:
        for op, of, tf in layer_ops(name, xs, ws, args.batch, ck, pk, rng):
            fns = {"ours": of}
            if tf is not None:
                fns["torch"] = tf
            r = timeit_interleaved(fns, args.rounds)
            line = f"{name:6s} {op:12s} {r['ours'][0]:9.3f} {r['ours'][1]:9.3f}"
            tot_o += r["ours"][0]
            used = not (name == "conv1" and op == "grad_input")
            train_o += r["ours"][0] if used else 0.0
            if "torch" in r:
                ratio = r["ours"][0] / r["torch"][0]
                line += f" {r['torch'][0]:9.3f} {r['torch'][1]:9.3f} {ratio:6.2f}"
                tot_t += r["torch"][0]
                train_t += r["torch"][0] if used else 0.0
            print(line + ("" if used else "   (not needed in training)"))
    line = f"{'total':6s} {'all ops':12s} {tot_o:9.3f} {'':9s}"
    if torch:
        line += f" {tot_t:9.3f} {'':9s} {tot_o / tot_t:6.2f}"
    print(line)
    line = f"{'total':6s} {'training':12s} {train_o:9.3f} {'':9s}"
    if torch:
        line += f" {train_t:9.3f} {'':9s} {train_o / train_t:6.2f}"
    print(line)


# ----------------------------------------------------------------------------
# alternatives that were measured while choosing the implementation
# ----------------------------------------------------------------------------
def explore(args):
    from numpy.lib.stride_tricks import as_strided

    rng = np.random.default_rng(0)
    N = args.batch
    for name, xs, ws in LENET:
        if ws is None:
            continue
        x = rng.standard_normal((N, *xs), dtype=np.float32)
        w = rng.standard_normal(ws, dtype=np.float32)
        O, C, K, _ = ws
        H = xs[1]
        OH = H - K + 1
        P = OH * OH
        g = rng.standard_normal((N, O, OH, OH), dtype=np.float32)
        print(f"\n== {name}: x {x.shape} w {w.shape}")

        # --- conv kernel variants: batch blocking budget and grad-weight GEMM order
        variants = {}
        for label, budget in [("one GEMM (no blocking)", None), ("blocks<=64KB", 64 << 10),
                              ("blocks<=256KB", 256 << 10), ("blocks<=1MB", 1 << 20)]:
            bb = dict.fromkeys(("fwd", "grad_weight", "grad_input"), budget)
            variants[label] = conv_mod._make_kernels(np, bb, half_in_float32=True)
        variants["grad_w as g@cols.T (256KB)"] = conv_mod._make_kernels(
            np, dict.fromkeys(("fwd", "grad_weight", "grad_input"), 256 << 10),
            half_in_float32=True, gw_cols_first=False)
        for layout in ("channels_first", "channels_last"):  # the default picks per layer
            variants[f"{layout} columns"] = conv_mod._make_kernels(
                np, conv_mod.CPU_BLOCK_BYTES, half_in_float32=True, layout=layout)
        calls = {
            "fwd": lambda k: k["conv2d"](x, w, **GEO),
            "grad_weight": lambda k: k["conv2d_grad_weight"](g, x, weight_shape=w.shape, **GEO),
            "grad_input": lambda k: k["conv2d_grad_input"](g, w, input_shape=x.shape, **GEO),
        }
        for op, call in calls.items():
            r = timeit_interleaved({lab: (lambda k=k: call(k)) for lab, k in variants.items()},
                                   args.rounds, inner=3)
            for lab, (md, mn) in r.items():
                print(f"  {op:12s} {lab:30s} med {md:7.3f}  min {mn:7.3f} ms")

        # --- im2col layouts / GEMM formulations for the forward, standalone
        win = as_strided(x, (N, C, OH, OH, K, K), x.strides + x.strides[2:])
        w2 = w.reshape(O, -1)

        def std_one_gemm():  # columns (C*K*K, N*P): one GEMM, output transposed after
            cols = np.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3)).reshape(C * K * K, -1)
            return np.ascontiguousarray((w2 @ cols).reshape(O, N, OH, OH).transpose(1, 0, 2, 3))

        def std_rows_gemm():  # columns (N*P, C*K*K): short inner copies
            cols = np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(N * P, -1)
            return np.ascontiguousarray((cols @ w2.T).reshape(N, OH, OH, O).transpose(0, 3, 1, 2))

        def std_batched():  # columns (N, C*K*K, P): per-sample GEMMs, no output transpose
            cols = np.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3)).reshape(N, C * K * K, P)
            return np.matmul(w2, cols).reshape(N, O, OH, OH)

        def std_loop_copy():  # im2col by a loop over kernel offsets instead of as_strided
            cols = np.empty((N, C, K, K, OH, OH), np.float32)
            for i in range(K):
                for j in range(K):
                    cols[:, :, i, j] = x[:, :, i:i + OH, j:j + OH]
            return np.matmul(w2, cols.reshape(N, C * K * K, P)).reshape(N, O, OH, OH)

        def einsum_view():  # no explicit im2col: einsum straight on the window view
            return np.einsum("nchwkl,ockl->nohw", win, w, optimize=True)

        def einsum_cols():
            cols = np.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3)).reshape(C * K * K, N, P)
            return np.einsum("ok,knp->nop", w2, cols, optimize=True).reshape(N, O, OH, OH)

        def tensordot_cols():
            cols = np.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3)).reshape(C * K * K, N, P)
            return np.tensordot(w2, cols, axes=(1, 0)).transpose(1, 0, 2).reshape(N, O, OH, OH)

        ref = conv_mod.kernels(np)["conv2d"](x, w, **GEO)
        alts = {"kernel (wide cols, blocked)": lambda: conv_mod.kernels(np)["conv2d"](x, w, **GEO),
                "std cols (CKK,N*P) one GEMM": std_one_gemm,
                "std cols (N*P,CKK) one GEMM": std_rows_gemm,
                "std cols (N,CKK,P) batched": std_batched,
                "std cols by offset loop": std_loop_copy,
                "einsum on window view": einsum_view,
                "einsum on cols": einsum_cols,
                "tensordot on cols": tensordot_cols}
        for f in alts.values():
            np.testing.assert_allclose(f(), ref, rtol=1e-3, atol=1e-3)
        r = timeit_interleaved(alts, max(3, args.rounds // 3), inner=3)
        for lab, (md, mn) in r.items():
            print(f"  fwd alt      {lab:30s} med {md:7.3f}  min {mn:7.3f} ms")

    # --- max pool forward: offset loop (kernel) vs reduction over window axes
    for shape in [(N, 6, 28, 28), (N, 16, 10, 10)]:
        x = rng.standard_normal(shape, dtype=np.float32)
        n, c, h, w_ = shape
        pk = pool_mod.kernels(np)
        y = pk["max_pool2d"](x, **PGEO)
        g = rng.standard_normal(y.shape, dtype=np.float32)

        def reduce_axes():
            return x.reshape(n, c, h // 2, 2, w_ // 2, 2).max(axis=(3, 5))

        def argmax_grad():  # first-max routing by argmax over a copied window axis
            win = x.reshape(n, c, h // 2, 2, w_ // 2, 2).transpose(0, 1, 2, 4, 3, 5)
            idx = np.ascontiguousarray(win).reshape(n, c, h // 2, w_ // 2, 4).argmax(-1)
            onehot = idx[..., None] == np.arange(4)
            gx = np.where(onehot, g[..., None], 0).reshape(n, c, h // 2, w_ // 2, 2, 2)
            return np.ascontiguousarray(gx.transpose(0, 1, 2, 4, 3, 5)).reshape(shape)

        np.testing.assert_array_equal(reduce_axes(), y)
        np.testing.assert_array_equal(argmax_grad(), pk["max_pool2d_grad"](g, x, y, **PGEO))
        r = timeit_interleaved({
            "fwd kernel (offset loop)": lambda: pk["max_pool2d"](x, **PGEO),
            "fwd reshape + max(axis)": reduce_axes,
            "grad kernel (mask loop)": lambda: pk["max_pool2d_grad"](g, x, y, **PGEO),
            "grad argmax + one-hot": argmax_grad,
        }, args.rounds, inner=3)
        print(f"\n== max pool 2x2 on {shape}")
        for lab, (md, mn) in r.items():
            print(f"  {lab:30s} med {md:7.3f}  min {mn:7.3f} ms")


#: (name, x shape without the batch, w shape, stride, padding): LeNet's and SmallVGG's layers
ENGINE_LAYERS = [
    ("LeNet conv1", (1, 28, 28), (6, 1, 5, 5), 1, 0),
    ("LeNet conv2", (6, 12, 12), (16, 6, 5, 5), 1, 0),
    ("VGG 3->16 32x32", (3, 32, 32), (16, 3, 3, 3), 1, 1),
    ("VGG 16->16 32x32", (16, 32, 32), (16, 16, 3, 3), 1, 1),
    ("VGG 16->32 16x16", (16, 16, 16), (32, 16, 3, 3), 1, 1),
    ("VGG 32->32 16x16", (32, 16, 16), (32, 32, 3, 3), 1, 1),
    ("VGG 32->64 s2", (32, 16, 16), (64, 32, 3, 3), 2, 1),
]


def engines(args):
    """The backend's convolution kernels with and without onnxruntime (``ort_conv.py``),
    interleaved: the forward and both gradients, on its default threads."""
    from plugrad.backends.numpy_backend import _blas, ort_conv, parallel

    numpy_table = dict(conv_mod.kernels(np))
    numpy_table.update(parallel.split_kernels({**numpy_table, **pool_mod.kernels(np)}, np))
    numpy_table = _blas.scoped(numpy_table)
    ort_table = _blas.scoped(ort_conv.kernels(numpy_table))
    rng = np.random.default_rng(0)
    print(f"batch {args.batch}, float32, ms per call (median, min)")
    for name, xs, ws, s, p in ENGINE_LAYERS:
        x = rng.standard_normal((args.batch, *xs), dtype=np.float32)
        w = rng.standard_normal(ws, dtype=np.float32) * 0.1
        geo = dict(stride=(s, s), padding=(p, p), dilation=(1, 1), groups=1)
        g = rng.standard_normal(numpy_table["conv2d"](x, w, **geo).shape, dtype=np.float32)
        for op, call in (("forward", lambda k: k["conv2d"](x, w, **geo)),
                         ("input grad", lambda k: k["conv2d_grad_input"](
                             g, w, input_shape=x.shape, **geo)),
                         ("weight grad", lambda k: k["conv2d_grad_weight"](
                             g, x, weight_shape=w.shape, **geo))):
            r = timeit_interleaved({"numpy": lambda: call(numpy_table),
                                    "onnxruntime": lambda: call(ort_table)}, args.rounds)
            cells = "  ".join(f"{lab} {md:7.3f} ({mn:7.3f})" for lab, (md, mn) in r.items())
            print(f"  {name:17s} {op:11s} {cells}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--torch-threads", type=int, default=2)
    ap.add_argument("--explore", action="store_true", help="time the alternatives instead")
    ap.add_argument("--engines", action="store_true",
                    help="time the NumPy convolutions against onnxruntime's instead")
    args = ap.parse_args()
    import_torch(args.torch_threads)
    (explore if args.explore else engines if args.engines else main_table)(args)


if __name__ == "__main__":
    main()
