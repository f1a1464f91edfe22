"""Write a checkpoint from ``plugrad train`` as an ONNX model, for onnxruntime and other runtimes.

    plugrad export lenet_mnist.pgd lenet.onnx [--batch-size 1] [--opset 17]

The model's inference is traced with ``capture_as_const`` and dumped (docs/deploy.md). Its input
``data`` is (N, 1, 32, 32) float32 images normalised as in training, its output ``logits``
(N, 10).
"""
from __future__ import annotations

import argparse

from plugrad.cli import UsageError, checks, job

HELP = "write a trained checkpoint as an ONNX model (needs plugrad[onnx])"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="file written by plugrad train")
    parser.add_argument("output", metavar="MODEL.onnx", help="the ONNX file to write")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="the batch size of the model's input (fixed in the graph)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (17 or later)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    import plugrad
    from plugrad.jit import trace

    checks.need("onnx", "onnx", "plugrad export")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1; got {args.batch_size}")
    if args.opset < 17:
        raise UsageError(f"--opset {args.opset} is too old; expected 17 or later")
    output = checks.output_path(args.output, "MODEL.onnx")
    model = job.lenet(checks.checkpoint(args.checkpoint)["model"])
    model.eval()

    def infer(data: plugrad.Tensor) -> plugrad.Tensor:
        return model(data)

    traced = trace(infer, symbolic=True, capture_as_const=True)  # the graph is named "infer"
    traced(plugrad.Tensor(np.zeros((args.batch_size, 1, 32, 32), np.float32)))
    traced.dump(str(output), arg_names=["data"], output_names=["logits"], opset=args.opset)
    print(f"wrote {output}: input 'data' ({args.batch_size}, 1, 32, 32) float32, output "
          f"'logits' ({args.batch_size}, 10)")
    return 0
