#!/usr/bin/env bash
# The device check of the GPU paths, as one prepared script for a machine with a CUDA GPU
# (about 8 minutes on an H200): build rdfast with its CUDA kernels, run every test that touches
# CUDA (the cuda and triton backends against the torch reference, CUDA-graph replay against the
# eager loop, the keyed random numbers on the device), then time the GPU providers of
# bench/test_gpu.py and write the report. Everything lands in ${OUT:-gpu_check}/.
#
#     bash bench/gpu_check.sh          (from the repository root; python3 must hold torch with CUDA)
set -u -o pipefail
OUT=${OUT:-gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-16}
PY=${PYTHON:-python3}

nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt"
$PY -m pip install -q --no-build-isolation --no-deps . 2>&1 | tee "$OUT/build.log" || exit 1
# -P: import the installed package, not the source tree (which has no compiled extension)
$PY -P -c "import json, torch, rdfast.backends as b; print(torch.__version__, torch.cuda.get_device_name());
print(json.dumps(b.available(), indent=1))" 2>&1 | tee "$OUT/backends.txt"

$PY -P -m pytest -q -p no:cacheprovider -x tests/runtime/test_device_loop.py tests/backends/test_conformance.py \
    tests/backends/test_triton.py tests/test_ops.py tests/sampling/test_annealing.py tests/sampling/test_bdmc.py 2>&1 | tee "$OUT/tests.log"
tests=$?

$PY -P -m pytest -q -p no:cacheprovider bench/test_gpu.py --benchmark-only \
    --benchmark-json="$OUT/gpu_results.json" 2>&1 | tail -n 40 | tee "$OUT/bench.log"
$PY bench/gpu_report.py "$OUT/gpu_results.json" "$OUT/GPU_BENCHMARKS.md" && cat "$OUT/GPU_BENCHMARKS.md"
exit $tests
