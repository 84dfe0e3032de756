"""scripts/gpu_check.sh, the GPU workflow and `make setup-gpu`, checked on a machine without a GPU.

The CUDA run itself needs a GPU; here: the script says clearly that there is none and succeeds,
fails loudly when a GPU is required (`--require-cuda`, as the workflow runs it), and the
workflow and the Makefile install what the CUDA run needs (torch's CUDA build, the `gpu` extra).
"""

import os
import re
import subprocess
import tomllib

import yaml

from autograder.paths import ROOT

SCRIPT = ROOT / "scripts" / "gpu_check.sh"
NO_GPU = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}   # hide any GPU, so these hold on GPU runners too


def run(*args, env=NO_GPU, timeout=300):
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_gpu_check_reports_no_cuda_device_cleanly(tmp_path):
    out = tmp_path / "out"
    proc = run(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no CUDA device: nothing to check" in proc.stdout
    assert not out.exists(), "nothing is written when there is no GPU"


def test_require_cuda_fails_loudly_without_a_gpu(tmp_path):
    out = tmp_path / "out"
    proc = run("--require-cuda", out)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "FAILED: a GPU is required (--require-cuda)" in proc.stderr
    assert "torch.cuda.is_available() is False" in proc.stderr
    assert not out.exists()


def test_gpu_check_fails_clearly_without_python(tmp_path):
    proc = run(env={**NO_GPU, "PY": str(tmp_path / "no-python")}, timeout=60)
    assert proc.returncode == 2
    assert "no Python at" in proc.stderr


def test_unknown_options_are_refused():
    proc = run("--requires-cuda", timeout=60)
    assert proc.returncode == 2 and "unknown option --requires-cuda" in proc.stderr


def _steps():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "gpu.yml").read_text())
    (job,) = workflow["jobs"].values()
    assert "gpu" in job["runs-on"]
    return [s.get("run", "") for s in job["steps"]]


def test_workflow_sets_up_cuda_then_requires_it():
    runs = _steps()
    setup = [i for i, r in enumerate(runs) if re.search(r"\bmake setup-gpu\b", r)]
    check = [i for i, r in enumerate(runs) if "scripts/gpu_check.sh" in r]
    assert setup, "the GPU workflow must run `make setup-gpu` (plain `make setup` has no CUDA kernels)"
    assert check and "--require-cuda" in runs[check[0]], "a runner without a usable GPU must fail the workflow"
    assert setup[0] < check[0]


def test_setup_gpu_installs_torchs_cuda_build_and_the_gpu_extra(tmp_path):
    """`make -n` prints what `make setup-gpu` would run on a fresh machine; the gpu extra must be in it."""
    proc = subprocess.run(["make", "-n", "setup-gpu", f"VENV={tmp_path / 'venv'}", f"WHEELS={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    gpu_recipe = lines[next(i for i, line in enumerate(lines) if "torch.version.cuda is None" in line):]
    installs = [line for line in gpu_recipe if "pip install" in line]
    torch_line = next(line for line in installs if "torch==2.13.0" in line)
    assert "--find-links" not in torch_line, "the CPU wheel's folder must not feed the CUDA install"
    extra = next((line for line in installs if re.search(r"\.\[[^\]]*\bgpu\b[^\]]*\]", line)), None)
    assert extra, "make setup-gpu must install the project's `gpu` extra"
    assert "--no-build-isolation" in extra, "mamba-ssm's setup.py imports torch: no build isolation"
    assert installs.index(torch_line) < installs.index(extra), "torch's CUDA build first, then the kernels"
    assert any("torch.version.cuda or sys.exit" in line for line in gpu_recipe), "a CPU build must fail the target"
    assert any("import torch, mamba_ssm, causal_conv1d" in line for line in gpu_recipe)


def test_the_gpu_extra_pins_both_kernels():
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]
    names = {re.split(r"[=<>~!]", spec)[0]: spec for spec in extra}
    assert set(names) == {"mamba-ssm", "causal-conv1d"}
    assert all("==" in spec for spec in names.values()), "pinned versions, matched to torch 2.13.0"
