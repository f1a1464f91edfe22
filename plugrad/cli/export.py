"""``plugrad export``: a LeNet checkpoint (from ``plugrad train``) as an ONNX model.

    plugrad export lenet_mnist.pgd lenet.onnx [--batch-size 1] [--opset 17]

The model's inference is traced with ``capture_as_const`` and dumped; its input is ``data``,
(N, 1, 32, 32) float32 images normalised as in training, and its output ``logits``, (N, 10).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plugrad export",
                                     description="Write a LeNet checkpoint as an ONNX model.")
    parser.add_argument("checkpoint", help="a file saved by 'plugrad train' (or plugrad.save of "
                                           "{'model': state_dict})")
    parser.add_argument("output", help="the .onnx file to write")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="the batch size of the model's input (fixed in the graph)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (17 or later)")
    return parser


def export(checkpoint: str, output: str, batch_size: int = 1, opset: int = 17) -> None:
    """Load ``checkpoint`` into a LeNet and dump its inference to ``output``."""
    import numpy as np

    import plugrad
    from plugrad.jit import trace
    from plugrad.nn import LeNet

    if not Path(checkpoint).is_file():
        raise SystemExit(f"plugrad export: no checkpoint at {checkpoint}; 'plugrad train' "
                         f"writes one (--checkpoint)")
    saved = plugrad.load(checkpoint)
    state = saved.get("model", saved) if isinstance(saved, dict) else None
    if not isinstance(state, dict):
        raise SystemExit(f"plugrad export: {checkpoint} holds no model state dict; expected "
                         f"what 'plugrad train' saves ({{'model': state_dict, ...}})")
    model = LeNet()
    model.load_state_dict(state)
    model.eval()

    @trace(symbolic=True, capture_as_const=True)
    def infer(data):
        return model(data)

    infer(plugrad.Tensor(np.zeros((batch_size, 1, 32, 32), np.float32)))
    try:
        infer.dump(output, arg_names=["data"], output_names=["logits"], opset=opset)
    except ImportError as exc:
        raise SystemExit(f"plugrad export: {exc}") from None


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise SystemExit(f"plugrad export: --batch-size must be at least 1; got {args.batch_size}")
    export(args.checkpoint, args.output, args.batch_size, args.opset)
    print(f"wrote {args.output}: input 'data' ({args.batch_size}, 1, 32, 32) float32, output "
          f"'logits' ({args.batch_size}, 10)")
    return 0
