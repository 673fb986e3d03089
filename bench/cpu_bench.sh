#!/usr/bin/env bash
# CPU benchmarks at one thread and at all cores, then BENCHMARKS.md and BENCHMARKS.png from both.
# Run from the repository root on a quiet machine: bash bench/cpu_bench.sh
set -euo pipefail
for threads in 1 all; do
  RDFAST_BENCH_THREADS=$threads .venv/bin/pytest -p no:cacheprovider bench/test_transition.py --benchmark-only \
    --benchmark-json=bench/results-threads-$threads.json
done
.venv/bin/python bench/report.py bench/results-threads-1.json bench/results-threads-all.json
