#!/usr/bin/env bash
# Prepare a GPU run on a machine that reaches PyPI: the GPU machine reaches no package index and
# does not see ../shared, so what benchmarks/gpu_check.sh needs from outside travels inside the
# checkout, in two git-ignored folders:
#   .whl/       wheels of plugrad's dependencies that the GPU machine's Python lacks
#   .gpu_data/  the MNIST files for the quick start
# GPU_PYTHON_VERSION is the GPU machine's Python (3.12 there); extra package specs may be passed
# as arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${GPU_PYTHON_VERSION:-3.12}
mkdir -p .whl .gpu_data
# Pure-Python dependencies of plugrad that images with CuPy and PyTorch often lack, and a
# setuptools new enough for plugrad's pyproject (the install there runs without build isolation).
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$version" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl \
    "array-api-compat>=1.12" "setuptools>=77" "mpich>=4" "$@"
rm -rf .gpu_data/mnist
cp -r ../shared/datasets/mnist .gpu_data/mnist
du -sh .whl .gpu_data
