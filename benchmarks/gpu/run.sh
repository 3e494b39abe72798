#!/bin/sh
# The GPU run of issue 17, on a bare GPU machine: python3 with torch + CUDA + Triton; whatever
# pure-Python package it lacks travels in .device_deps (benchmarks/device_check.py finds it).
#   benchmarks/gpu/run.sh OUT_DIR [bench_gpu.py options]
# Eager, compiled and CUDA-graph variants of the full-size work shape (gigabrain-0, and
# gigabrain-0.5 with its standard mode and world-model step), interleaved, bf16; JSON and a
# markdown table in OUT_DIR; stops measuring at 7 minutes and exits within 8.
# Rehearse on the CPU: benchmarks/gpu/run.sh OUT_DIR --device cpu --presets tiny --dtype float32
set -u
OUT=${1:?usage: benchmarks/gpu/run.sh OUT_DIR [options]}
shift
cd "$(dirname "$0")/../.." || exit 1
mkdir -p "$OUT"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && ! command -v nvidia-smi >/dev/null && PY=.venv/bin/python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false
timeout -k 10 470 "$PY" benchmarks/gpu/bench_gpu.py "$OUT" --budget-s 420 "$@" 2>&1 | tee "$OUT/log.txt"
