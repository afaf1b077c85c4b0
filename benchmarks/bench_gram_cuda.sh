#!/usr/bin/env bash
# One command for the GPU benchmark of the Gram/style-loss kernels (needs a CUDA device and a
# CUDA build of genfast): writes out/bench_gram_cuda.{json,png}.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m genfast info
"$PY" -m genfast bench --op gram --device cuda --json out/bench_gram_cuda.json --plot out/bench_gram_cuda.png "$@"
