#!/usr/bin/env bash
# The CUDA run of the course (issue 7): all seven solution notebooks executed with DEVICE=cuda
# (QUICK sizes, papermill through `python -m autograder execute --device cuda`), then the
# architecture benchmark `bench/run.py --device cuda`, everything written to ONE folder:
#
#     scripts/gpu_check.sh [OUT_DIR]        (default build/gpu_check/<UTC timestamp>/)
#
# Installs nothing: it uses $PY (default .venv/bin/python, made by `make setup`).
# Exit status:
#   0  everything ran on the GPU; or there is NO CUDA device: it prints
#      "no CUDA device: nothing to check" and exits 0 (a CPU machine is not a failure)
#   1  a notebook or the benchmark failed (logs in OUT_DIR)
#   2  the Python environment is broken (torch cannot be imported)
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
if [ ! -x "$PY" ]; then
    echo "gpu_check: no Python at $PY (run 'make setup' first, or set PY=/path/to/python)" >&2
    exit 2
fi
export HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE TOKENIZERS_PARALLELISM=false

if ! cuda=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null); then
    echo "gpu_check: cannot import torch with $PY" >&2
    exit 2
fi
if [ "$cuda" != "1" ]; then
    echo "no CUDA device: nothing to check (torch.cuda.is_available() is False with $PY)"
    exit 0
fi

OUT=${1:-build/gpu_check/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/notebooks" "$OUT/bench"
echo "gpu_check: writing to $OUT"
(nvidia-smi || true) > "$OUT/nvidia-smi.txt" 2>&1
"$PY" -c 'import json; from archlab.device import describe_machine; print(json.dumps(describe_machine(), indent=1))' \
    > "$OUT/machine.json"
"$PY" -c 'import importlib.util as u; print({p: u.find_spec(p) is not None for p in ("mamba_ssm", "causal_conv1d")})' \
    > "$OUT/cuda_kernels.txt"

status=0
"$PY" -m autograder execute --device cuda 2>&1 | tee "$OUT/notebooks/execute.log" || status=1
cp build/executed/*.ipynb "$OUT/notebooks/" 2>/dev/null || true
"$PY" bench/run.py --device cuda --out "$OUT/bench" 2>&1 | tee "$OUT/bench/bench.log" || status=1

echo "gpu_check: done with status $status; results in $OUT"
exit $status
