#!/usr/bin/env bash
# The CUDA run of the course (issues 7, 13, 18), everything written to ONE folder:
#
#     scripts/gpu_check.sh [--require-cuda] [--cpu-run DIR] [OUT_DIR]   (default build/gpu_check/<UTC time>)
#
#  1. set-up check   torch's CUDA build sees a GPU; mamba-ssm and causal-conv1d import and their
#                    kernels equal transformers' PyTorch reference on a small case    -> setup.json
#  2. notebooks      all seven solution notebooks, QUICK, DEVICE=cuda (papermill through
#                    `python -m autograder execute`), each with its parity record       -> cuda/
#  3. benchmark      bench/run.py and bench/selective_scan.py --prefill on CUDA         -> bench/
#  4. CPU reference  the same notebooks with DEVICE=cpu on this machine (skipped with
#                    --cpu-run DIR: records of a CPU run made elsewhere)                -> cpu/
#  5. parity report  scripts/parity.py cuda/ against cpu/: parity, seconds per notebook,
#                    the implementation each fast path used, both machines  -> parity.md, parity.json
#  and phases.tsv (seconds per phase), nvidia-smi.txt, the logs. Target: under 10 minutes on one GPU.
#
# Installs nothing: it uses $PY (default .venv/bin/python, made by `make setup-gpu`).
# Exit status:
#   0  everything ran on the GPU and the parity report passed; or, WITHOUT --require-cuda, there is
#      no usable CUDA: it prints "no CUDA device: nothing to check" and exits 0 (a CPU machine)
#   1  a notebook, the benchmark or the parity report failed (see OUT_DIR)
#   2  the Python environment is broken (torch cannot be imported)
#   3  --require-cuda and no usable CUDA: torch is a CPU build, no GPU is visible, or the gpu extra
#      (mamba-ssm, causal-conv1d) is missing or its kernels fail (the GPU workflow uses this)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

require_cuda=0
cpu_run=""
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --require-cuda) require_cuda=1 ;;
        --cpu-run) cpu_run=${2:?--cpu-run needs a folder}; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
        -*) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) OUT=$1 ;;
    esac
    shift
done

PY=${PY:-.venv/bin/python}
if [ ! -x "$PY" ]; then
    echo "gpu_check: no Python at $PY (run 'make setup-gpu' first, or set PY=/path/to/python)" >&2
    exit 2
fi
# autograder/contract.py's KERNEL_ENV (tests/test_contract.py keeps them equal)
export HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE TOKENIZERS_PARALLELISM=false

if ! cuda=$("$PY" -c 'import torch; print(f"{int(torch.cuda.is_available())} {torch.version.cuda}")' 2>/dev/null); then
    echo "gpu_check: cannot import torch with $PY" >&2
    exit 2
fi
if [ "${cuda%% *}" != "1" ]; then
    why="torch.cuda.is_available() is False with $PY (torch's CUDA runtime: ${cuda#* })"
    [ "${cuda#* }" = "None" ] && why="$why: a CPU build of torch; run 'make setup-gpu'"
    command -v nvidia-smi >/dev/null && why="$why; nvidia-smi is present, so the driver or CUDA_VISIBLE_DEVICES hides the GPU"
    if [ $require_cuda = 1 ]; then
        echo "gpu_check: FAILED: a GPU is required (--require-cuda) but there is no usable CUDA: $why" >&2
        exit 3
    fi
    echo "no CUDA device: nothing to check ($why)"
    exit 0
fi

OUT=${OUT:-build/gpu_check/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/cuda" "$OUT/cpu" "$OUT/bench" "$OUT/logs"
echo "gpu_check: writing to $OUT"
(nvidia-smi || true) > "$OUT/nvidia-smi.txt" 2>&1
printf 'phase\tseconds\tstatus\n' > "$OUT/phases.tsv"
status=0
t_all=$SECONDS

phase() {  # phase NAME COMMAND...: run it, log it, record its seconds and status
    local name=$1 t0=$SECONDS rc
    shift
    "$@" > "$OUT/logs/$name.log" 2>&1
    rc=$?
    printf '%s\t%s\t%s\n' "$name" $((SECONDS - t0)) "$rc" >> "$OUT/phases.tsv"
    echo "gpu_check: $name: $([ $rc = 0 ] && echo ok || echo "FAILED (exit $rc)") in $((SECONDS - t0)) s"
    return $rc
}

# 1. set-up check: the CUDA build, the gpu extra, and its kernels against the PyTorch reference
setup_check() {
    "$PY" - "$OUT/setup.json" <<'PYEOF'
import json, sys
import torch
from archlab import fastpaths
from archlab.device import describe_machine

out = {"machine": describe_machine(), "torch": torch.__version__, "cuda_runtime": torch.version.cuda}
problems = []
for package in ("mamba_ssm", "causal_conv1d"):
    try:
        out[package] = __import__(package).__version__
    except Exception as e:  # not installed, or built for another torch/CUDA
        problems.append(f"{package} does not import ({type(e).__name__}: {e}): run 'make setup-gpu'")
if not problems:
    from transformers.models.mamba import modeling_mamba as mm
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    B, D, L, N = 2, 64, 128, 16
    u, dt = torch.randn(B, D, L, generator=g), torch.rand(B, D, L, generator=g) * 0.1
    A, Bm, C = -torch.rand(D, N, generator=g) - 0.5, torch.randn(B, N, L, generator=g), torch.randn(B, N, L, generator=g)
    kernel, impl, reference = fastpaths.bound_implementation(mm.mamba_selective_scan)
    if not kernel:
        problems.append("transformers did not bind mamba-ssm's selective-scan kernel")
    else:
        want = reference(u, dt, A, Bm, C, D=torch.ones(D))
        got = impl(*(t.to(dev) for t in (u, dt, A, Bm, C)), D=torch.ones(D, device=dev)).cpu()
        err = float((got - want).abs().max() / want.abs().max())
        out["selective_scan_kernel_error_over_scale"] = err
        if err > 1e-4:
            problems.append(f"mamba-ssm's selective scan differs from the PyTorch reference: {err:.1e} of scale")
out["fast_paths_cuda"] = fastpaths.show("cuda")
out["problems"] = problems
json.dump(out, open(sys.argv[1], "w"), indent=1)
for p in problems:
    print("gpu_check:", p, file=sys.stderr)
sys.exit(3 if problems else 0)
PYEOF
}
if ! phase setup setup_check; then
    cat "$OUT/logs/setup.log" >&2
    if [ $require_cuda = 1 ]; then
        echo "gpu_check: FAILED: the CUDA set-up is incomplete (--require-cuda); see $OUT/setup.json" >&2
        exit 3
    fi
    status=1
fi

# 2 and 4: the notebooks, one process each so that one failure does not stop the others
notebooks() {  # notebooks DEVICE FOLDER
    local device=$1 folder=$2 rc=0 nb
    rm -f build/executed/*.ipynb build/executed/*.parity.json
    for nb in $("$PY" -c 'from autograder import paths; print(*paths.present_assignments())'); do
        "$PY" -m autograder execute "$nb" --device "$device" || rc=1
        cp build/executed/"$nb".ipynb build/executed/"$nb".parity.json "$folder"/ 2>/dev/null
    done
    return $rc
}
phase notebooks-cuda notebooks cuda "$OUT/cuda" || status=1

# 3. the benchmark on the GPU
phase bench-architectures "$PY" bench/run.py --device cuda --out "$OUT/bench" || status=1
phase bench-selective-scan "$PY" bench/selective_scan.py --device cuda --prefill --out "$OUT/bench" || status=1

# 4. the CPU reference run
if [ -n "$cpu_run" ]; then
    cp "$cpu_run"/*.ipynb "$cpu_run"/*.parity.json "$OUT/cpu/" 2>/dev/null
    printf 'notebooks-cpu\t0\tcopied from %s\n' "$cpu_run" >> "$OUT/phases.tsv"
else
    phase notebooks-cpu notebooks cpu "$OUT/cpu" || status=1
fi

# 5. parity: the CUDA run against the CPU run
phase parity "$PY" scripts/parity.py "$OUT/cuda" "$OUT/cpu" --out "$OUT" || status=1
cat "$OUT/logs/parity.log"

total=$((SECONDS - t_all))
printf 'total\t%s\t%s\n' "$total" "$status" >> "$OUT/phases.tsv"
[ $total -gt 600 ] && echo "gpu_check: took $total s, over the 10-minute target (phases in $OUT/phases.tsv)"
echo "gpu_check: done with status $status in $total s; results in $OUT"
exit $status
