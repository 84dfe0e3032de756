"""archlab.fastpaths says which implementation each fast path runs, and the choice follows the device.

A CUDA machine is simulated on the CPU: stand-in `mamba_ssm` and `causal_conv1d` packages
(written into a temporary folder) whose functions reject CPU tensors as mamba-ssm's kernels do
(`TORCH_CHECK(u.is_cuda())`). transformers then binds them at import, as it binds the real ones.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from archlab import fastpaths

FAKE = {
    "mamba_ssm/__init__.py": "",
    "mamba_ssm/ops/__init__.py": "",
    "mamba_ssm/ops/selective_scan_interface.py": """
        def _check(t):
            if not t.is_cuda:
                raise RuntimeError("Expected u.is_cuda() to be true, but got false.")
        def selective_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                              return_last_state=False):
            _check(u)
        def mamba_inner_fn(xz, *args, **kwargs):
            _check(xz)
    """,
    "mamba_ssm/ops/triton/__init__.py": "",
    "mamba_ssm/ops/triton/selective_state_update.py": """
        from mamba_ssm.ops.selective_scan_interface import _check
        def selective_state_update(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False):
            _check(x)
    """,
    "causal_conv1d/__init__.py": """
        def causal_conv1d_fn(x, weight, bias=None, activation=None, **kwargs):
            if not x.is_cuda:
                raise RuntimeError("Expected x.is_cuda() to be true, but got false.")
        def causal_conv1d_update(x, conv_state, weight, bias=None, activation=None):
            if not x.is_cuda:
                raise RuntimeError("Expected x.is_cuda() to be true, but got false.")
    """,
}

# Runs in a fresh interpreter that sees the stand-in kernels: transformers binds them at import.
PROBE = """
import json, sys, torch
from transformers import MambaConfig
from transformers.models.mamba import modeling_mamba
from archlab import fastpaths

cfg = MambaConfig(hidden_size=16, state_size=4, conv_kernel=4, expand=2, time_step_rank=2, num_hidden_layers=1,
                  vocab_size=16, use_bias=False, use_conv_bias=True)
torch.manual_seed(0)
mixer = modeling_mamba.MambaMixer(cfg, layer_idx=0).eval()
x = torch.randn(2, 7, 16)
out = {"bound": fastpaths.bound_implementation(modeling_mamba.mamba_selective_scan)[0]}
try:
    with torch.no_grad():
        mixer(x)
    out["unrouted"] = "ran"
except RuntimeError as e:
    out["unrouted"] = str(e)
out["routed"] = fastpaths.route_by_device()
with torch.no_grad():
    out["y"] = mixer(x).tolist()
out["calls"] = {f"{k[0]}/{k[1]}": v for k, v in fastpaths.CALLS.items()}
out["report"] = fastpaths.report("cpu")
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def with_kernels(tmp_path_factory):
    """What the probe saw with stand-in kernels installed (one subprocess, ~10 s)."""
    root = tmp_path_factory.mktemp("fake_kernels")
    for rel, text in FAKE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_binding_is_read_from_transformers_wrapper(with_kernels):
    assert with_kernels["bound"] is True, "with mamba_ssm importable, transformers binds its kernel"
    is_kernel, impl, reference = fastpaths.bound_implementation(
        __import__("transformers.models.mamba.modeling_mamba", fromlist=["x"]).mamba_selective_scan)
    assert is_kernel is False and impl is reference, "here, without mamba-ssm: the PyTorch reference"


def test_bound_kernels_reject_cpu_tensors_until_routed_by_device(with_kernels):
    assert "is_cuda" in with_kernels["unrouted"], "the hazard this module fixes: CPU tensors into CUDA kernels"
    assert "modeling_mamba.mamba_selective_scan" in with_kernels["routed"]
    assert "modeling_jamba.causal_conv1d_fn" in with_kernels["routed"]


def test_routed_cpu_calls_compute_what_transformers_computes_without_kernels(with_kernels):
    from transformers import MambaConfig
    from transformers.models.mamba import modeling_mamba

    cfg = MambaConfig(hidden_size=16, state_size=4, conv_kernel=4, expand=2, time_step_rank=2, num_hidden_layers=1,
                      vocab_size=16, use_bias=False, use_conv_bias=True)
    torch.manual_seed(0)
    mixer = modeling_mamba.MambaMixer(cfg, layer_idx=0).eval()
    x = torch.randn(2, 7, 16)
    with torch.no_grad():
        want = mixer(x)
    torch.testing.assert_close(torch.tensor(with_kernels["y"]), want, rtol=0, atol=0)
    calls = with_kernels["calls"]
    assert calls.get("mamba_selective_scan/pytorch") == 1 and calls.get("causal_conv1d_fn/pytorch") == 1
    assert not any(k.endswith("/kernel") for k in calls), "no CPU tensor reached a kernel"


def test_the_report_names_the_kernel_and_says_cpu_tensors_take_the_reference(with_kernels):
    scan = with_kernels["report"]["Mamba selective scan"]
    assert "mamba_ssm's selective-scan kernel" in scan and "selective_scan_fn" in scan
    assert scan.startswith("transformers' PyTorch reference (CPU tensors")
    assert "calls so far: kernel 0, PyTorch 1" in scan
    assert "causal_conv1d's causal-conv1d kernel" in with_kernels["report"]["Mamba causal conv1d"]


class _OnCuda(torch.Tensor):
    """A CPU tensor that says it lives on CUDA: enough to exercise the dispatch without a GPU."""

    @property
    def device(self):
        return torch.device("cuda")


def test_dispatch_sends_gpu_tensors_to_the_kernel_and_others_to_the_reference():
    seen = []
    routed = fastpaths._routed("probe", lambda x: seen.append("kernel"), lambda x: seen.append("pytorch"))
    before = dict(fastpaths.CALLS)
    routed(torch.zeros(2))
    routed(torch.Tensor._make_subclass(_OnCuda, torch.zeros(2)))
    assert seen == ["pytorch", "kernel"]
    assert fastpaths.CALLS["probe", "kernel"] == before.get(("probe", "kernel"), 0) + 1


def test_without_kernels_nothing_is_patched_and_the_report_says_why(capsys):
    from transformers.models.mamba import modeling_mamba

    original = modeling_mamba.mamba_selective_scan
    rows = fastpaths.show("cpu")
    assert modeling_mamba.mamba_selective_scan is original, "a CPU machine's transformers is left as it is"
    out = capsys.readouterr().out
    assert out.startswith("archlab fast paths on cpu:")
    for name, how in rows.items():
        assert name in out and how in out
    assert "mamba_ssm is not installed" in rows["Mamba selective scan"]
    assert rows["CUDA graphs"] == "not used (CPU)"
    assert "SDPA" in rows["attention"] and ("fused" in rows["attention"])


def test_an_unknown_wrapper_is_an_error_not_a_guess():
    with pytest.raises(RuntimeError, match="cannot tell which implementation"):
        fastpaths.bound_implementation(lambda x: x)
