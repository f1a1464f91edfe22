#!/usr/bin/env bash
# Every check that needs an NVIDIA GPU, in one run: a GPU machine's time is short, so one call
# does it all and writes each step's log under $OUT (default: ./gpu_check_out).
#
#   bash benchmarks/gpu_prepare.sh        # here, with network: wheels and MNIST into .whl/, .gpu_data/
#   OUT=/tmp/out bash benchmarks/gpu_check.sh          # on the GPU machine, from the repository root
#   GPU_CHECK_DRY=1 bash benchmarks/gpu_check.sh       # anywhere: the same steps on the CPU, short
#
# Steps: install plugrad (no dependencies fetched: the GPU machine reaches no package index),
# `plugrad info`, the CuPy tests, the conformance suite on gpu0, the quick start for one epoch on
# xpux (accuracy >= 97.5%), and the LeNet step against PyTorch CUDA at batch 64 and 256.
# Every step runs even if an earlier one failed; summary.txt lists each step's exit status,
# and the script exits non-zero if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-gpu_check_out}
PY=${PYTHON:-python3}
DRY=${GPU_CHECK_DRY:-0}
MNIST=${PLUGRAD_MNIST:-.gpu_data/mnist}
[ -d "$MNIST" ] || MNIST=../shared/datasets/mnist
export PLUGRAD_DATA_DIR=$(cd "$MNIST/.." && pwd)  # where the tests look for mnist/
mkdir -p "$OUT"
: >"$OUT/summary.txt"
export PYTHONUNBUFFERED=1

failed=0
step() {  # step NAME TIMEOUT_S COMMAND...: run it, log it, record its exit status
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    echo "== $name: $*" >"$OUT/$name.log"
    timeout "$limit" "$@" >>"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$OUT/$name.log"
    printf '%-12s rc=%-3s %4ss\n' "$name" "$rc" "$((SECONDS - start))" \
        | tee -a "$OUT/summary.txt"
    [ "$rc" -eq 0 ] || failed=1
}

# Packages the GPU machine lacks travel as wheels in .whl/ (benchmarks/gpu_prepare.sh).
if compgen -G ".whl/*.whl" >/dev/null; then
    step wheels 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/plugrad-site .whl/*.whl
    export PYTHONPATH=/tmp/plugrad-site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ "$DRY" = 1 ]; then
    # Dry run: plugrad is already installed where this runs; check the script, not the GPU.
    DEVICE=cpu0 BACKEND=numpy EPOCH_LIMIT=1
else
    step install 300 "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e .
    DEVICE=gpu0 BACKEND=cupy BATCHES="64 256" STEPS=100 EPOCH_LIMIT=1
fi

step info 120 "$PY" -m plugrad info
if [ "$DRY" != 1 ]; then
    "$PY" -c "import cupy; cupy.show_config()" >"$OUT/cupy_config.log" 2>&1
    nvidia-smi >"$OUT/nvidia_smi.log" 2>&1
fi

# The CuPy backend's own tests, then every test marked `gpu` anywhere in the suite (skipped
# without a GPU, so the dry run checks that they collect); -rs lists skips with their reasons.
step cupy_tests 300 "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_cupy_backend.py \
    tests/test_cupy_kernel_sources.py
if [ "$DRY" = 1 ]; then  # no GPU: every gpu test skips, and pytest says 5 (nothing ran)
    step gpu_tests 600 bash -c '"$0" -m pytest -q -rs -p no:cacheprovider -m gpu tests; rc=$?
        exit $((rc == 5 ? 0 : rc))' "$PY"
else
    step gpu_tests 600 "$PY" -m pytest -q -rs -p no:cacheprovider -m gpu tests
fi
if [ "$DRY" = 1 ]; then
    step conformance 600 "$PY" -m plugrad.conformance --backend "$BACKEND" --device "$DEVICE" \
        -k "relu or matmul"
else
    step conformance 600 "$PY" -m plugrad.conformance --backend "$BACKEND" --device "$DEVICE"
fi

# The quick start on the default device (xpux: the GPU when there is one), seed 1 as in
# tests/test_quickstart.py; accuracy must reach 97.5% after one epoch.
step quickstart 900 "$PY" tests/seeds/quickstart_004.py "$MNIST" "$EPOCH_LIMIT" 1
step accuracy 10 "$PY" -c "import re, sys
accuracy = float(re.findall(r'accuracy: ([0-9.]+)', open(sys.argv[1]).read())[-1])
print('quick-start accuracy after one epoch:', accuracy)
sys.exit(accuracy < 0.975)" "$OUT/quickstart.log"

if [ "$DRY" = 1 ]; then
    step bench 60 "$PY" benchmarks/bench_lenet_gpu.py --help
else
    step bench 600 "$PY" benchmarks/bench_lenet_gpu.py --device "$DEVICE" --batch $BATCHES \
        --steps "$STEPS"
fi

echo
cat "$OUT/summary.txt"
exit "$failed"
