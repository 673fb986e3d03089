#!/usr/bin/env bash
# The device check of the GPU paths, for a machine with a CUDA GPU, in short steps. Each step
# writes its output to ${OUT:-gpu_check}/<step>.log and its verdict to <step>.status as it ends
# (RUNNING while it runs), so a run cut off midway still says what passed.
#
#     bash bench/gpu_check.sh                  every step, in order (from the repository root;
#     bash bench/gpu_check.sh cuda bench       python3 must hold torch with CUDA, scikit-build-core,
#                                              pybind11 and pytest-benchmark); or the named steps
# Steps (each is stopped after STEP_LIMIT seconds, and should need far less):
#   build   pip install with RDFAST_CUDA=on, so a missing or failing nvcc is an error, then
#           bench/gpu_smoke.py: the cuda backend has code for this GPU, its kernels ran and agree
#           with the reference. If this fails, no later step runs.
#   cuda    the tests marked gpu, except Triton's: every op of the cuda backend against the
#           reference, CUDA-graph replay against the eager loop, the keyed random numbers on the GPU
#   triton  the Triton tests marked gpu: every op of the triton backend, compiled for this GPU
#   bench   bench/test_gpu.py with one repeat, and its report $OUT/GPU_BENCHMARKS.md
# The test steps first check that their backend runs on this GPU (else their tests would skip).
set -u -o pipefail
OUT=${OUT:-gpu_check}
STEP_LIMIT=280
STEPS=(build cuda triton bench)
PY=${PYTHON:-python3}
export OUT PY PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-16}
mkdir -p "$OUT"

# -P: import the installed package, not the source tree (which has no compiled extension)
step_build() {
    RDFAST_CUDA=on $PY -m pip install -v --no-build-isolation --no-deps . && $PY -P bench/gpu_smoke.py
}
# require BACKEND: fail unless the backend runs on this machine's GPU
require() {
    $PY -P - "$1" <<'PY'
import sys, torch
from rdfast import backends
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device")
try:
    backends.get(sys.argv[1], torch.device("cuda"))
except ValueError as exc:
    sys.exit(str(exc))
PY
}
step_cuda() {
    require cuda && $PY -P -m pytest -v -p no:cacheprovider -m gpu -k "not triton" tests/
}
step_triton() {
    require triton && $PY -P -m pytest -v -p no:cacheprovider -m gpu -k triton tests/
}
step_bench() {
    require cuda && RDFAST_GPU_REPEATS=1 $PY -P -m pytest -q -p no:cacheprovider bench/test_gpu.py --benchmark-only \
        --benchmark-json="$OUT/gpu_results.json" && $PY bench/gpu_report.py "$OUT/gpu_results.json" "$OUT/GPU_BENCHMARKS.md"
}
export -f require step_build step_cuda step_triton step_bench

# run NAME: step_NAME under the time limit (SIGINT first, so that pytest reports what it has done)
run() {
    local name=$1 start=$SECONDS rc verdict
    echo "RUNNING since $(date -u +%T) UTC" > "$OUT/$name.status"
    timeout -k 20 -s INT "$STEP_LIMIT" bash -c "step_$name" > "$OUT/$name.log" 2>&1
    rc=$?
    case $rc in
        0) verdict=PASS ;;
        124) verdict="FAIL (cut off after $STEP_LIMIT s)" ;;
        *) verdict="FAIL (exit status $rc)" ;;
    esac
    echo "$verdict in $((SECONDS - start)) s: $(grep -v '^\s*$' "$OUT/$name.log" | tail -n 1)" > "$OUT/$name.status"
    echo "== $name: $(cat "$OUT/$name.status")"
    return $rc
}

selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${STEPS[@]}")
for name in "${selected[@]}"; do
    [[ " ${STEPS[*]} " == *" $name "* ]] || { echo "gpu_check.sh: expected steps among ${STEPS[*]}, got '$name'" >&2; exit 2; }
done

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
failed=0
for name in "${selected[@]}"; do
    if ! run "$name"; then
        failed=1
        if [ "$name" = build ]; then
            tail -n 30 "$OUT/build.log"
            echo "gpu_check.sh: the build failed; no later step runs" >&2
            exit 1
        fi
    fi
done
[ -f "$OUT/GPU_BENCHMARKS.md" ] && cat "$OUT/GPU_BENCHMARKS.md"
exit $failed
