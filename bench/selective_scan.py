"""Benchmark of the selective scan (not a test): transformers' PyTorch reference scan against the
course's sequential, parallel and fused scans, plus Mamba decode and prefill (issue 3, Performance).

    .venv/bin/python bench/selective_scan.py [--device cpu|cuda] [--lengths 512 2048 8192]
        [--d-inner 1536] [--state 16] [--repeat 5] [--threads N] [--prefill] [--no-sequential]

Same inputs for every scan: batch 1, float32, d_inner channels, N state entries. The reference is
transformers' PyTorch scan (`mamba_selective_scan` in models/mamba/modeling_mamba.py, read through
archlab.fastpaths so that it stays the PyTorch code even where mamba-ssm is installed); only the
scan, from Δ to y, is timed. The fused scan is archref's: a numba kernel on the CPU, mamba-ssm's
selective-scan kernel on CUDA (the results name which one ran). Every timing warms up first
(numba compiles in the warm-up), synchronises CUDA, and reports the median and the spread over
`--repeat` runs. The fused scan is checked equal to the reference within 1e-5 relative to the
output's scale. Peak memory counts torch's allocator and numpy's arrays
(archlab.measure.memory_peaks): the fused CPU scan's output is a numpy array.
Writes bench/results/selective_scan-<machine>[-cuda].json and .md with the machine's description
and the command that ran. The goal on a CPU: fused >= 20x the reference at L = 8192.
"""

import os

from autograder import contract

contract.apply_kernel_env()   # as make gives it, before torch starts its thread pool

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402
from transformers.models.mamba import modeling_mamba  # noqa: E402

from archlab import fastpaths, measure, models  # noqa: E402
from archlab.device import describe_machine, machine_slug, pick_device, recorded_command  # noqa: E402
from archref import ssm  # noqa: E402  (instructor-only: the course's fused scan)
from archref.mamba import Mamba  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# transformers' PyTorch scan, whatever kernel transformers bound at import
REFERENCE_SCAN = fastpaths.bound_implementation(modeling_mamba.mamba_selective_scan)[2]


def inputs(L, d, n, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(1, L, d, generator=g)                              # (B, L, D)
    delta = F.softplus(torch.randn(1, L, d, generator=g) - 3)           # (B, L, D), Mamba-like steps
    A = -torch.arange(1, n + 1.0).repeat(d, 1)                          # (D, N), S4D-real
    Bm, C = torch.randn(1, L, n, generator=g), torch.randn(1, L, n, generator=g)   # (B, L, N)
    return tuple(t.to(device) for t in (u, delta, A, Bm, C, torch.ones(d)))


def reference_scan(u, delta, A, Bm, C, D):
    return REFERENCE_SCAN(u.transpose(1, 2), delta.transpose(1, 2), A, Bm.transpose(1, 2),
                          C.transpose(1, 2), D=D).transpose(1, 2)      # (B, L, D)


def fused_implementation(device):
    """What archref's fused scan runs on this device, in words."""
    if device.type != "cuda":
        return "archref numba kernel (CPU)"
    if importlib.util.find_spec("mamba_ssm") is not None:
        return "mamba-ssm selective_scan_fn (CUDA kernel)"
    return "archref parallel scan: mamba-ssm is not installed (not a fused kernel)"


def timing(fn, repeat, what, device):
    t = measure.time_fn(fn, warmup=1, repeat=repeat, device=device, what=what)
    return {"median_s": t.median, "min_s": min(t.times), "max_s": max(t.times), "repeat": repeat}


def bench_scans(a, device, bar):
    rows = []
    for L in a.lengths:
        args = inputs(L, a.d_inner, a.state, device)
        # each function is timed within this iteration; the default argument binds this length's inputs
        fns = {"reference": lambda args=args: reference_scan(*args),
               "parallel": lambda args=args: ssm.selective_scan_parallel(*args),
               "fused": lambda args=args: ssm.selective_scan_fused(*args)}
        if not a.no_sequential:
            fns["sequential"] = lambda args=args: ssm.selective_scan_sequential(*args)
        row = {"L": L}
        for name, fn in fns.items():
            bar.set_description(f"scan {name} L={L}")
            row[name] = timing(fn, a.repeat, name, device)
            _, peaks = measure.memory_peaks(fn, device)
            row[name]["peak_bytes"] = peaks["torch"] + peaks["numpy"]
            row[name]["peak_torch_bytes"], row[name]["peak_numpy_bytes"] = peaks["torch"], peaks["numpy"]
            bar.update(1)
        ref, fused = reference_scan(*args), ssm.selective_scan_fused(*args)
        row["fused_max_abs_err_over_scale"] = float((fused - ref).abs().max() / ref.abs().max())
        row["fused_equal_1e-5"] = row["fused_max_abs_err_over_scale"] <= 1e-5
        row["speedup_fused_vs_reference"] = row["reference"]["median_s"] / row["fused"]["median_s"]
        row["speedup_parallel_vs_reference"] = row["reference"]["median_s"] / row["parallel"]["median_s"]
        rows.append(row)
    return rows


def bench_decode(a, device, bar):
    torch.manual_seed(0)
    blk = Mamba(a.d_inner // 2, d_state=a.state).to(device).eval()
    rows = []
    for ctx in a.decode_contexts:
        bar.set_description(f"decode after {ctx} tokens")
        x = torch.randn(1, ctx, blk.d_model, device=device)
        with torch.no_grad():
            state = None
            for t in range(ctx):   # build the state token by token, as decoding would
                _, state = blk.step(x[:, t:t + 1], state)
            x_t = torch.randn(1, 1, blk.d_model, device=device)
            t = timing(lambda x_t=x_t, state=state: blk.step(x_t, state), a.repeat * 20, "step", device)
        rows.append({"context": ctx, **t, "state_bytes": measure.tensor_bytes(state)})
        bar.update(1)
    return rows


class _MixerAdapter(torch.nn.Module):
    """archref's Mamba block where transformers' MambaModel expects its mixer (no cache: prefill only)."""

    def __init__(self, blk):
        super().__init__()
        self.blk = blk

    def forward(self, hidden_states, *args, **kw):
        return self.blk(hidden_states)


def bench_prefill(a, device, bar):
    L = a.prefill_length
    out = {"L": L}
    ids = torch.randint(0, 50000, (1, L), device=device)
    for family in ("mamba", "gpt2"):
        bar.set_description(f"prefill {family} L={L}")
        over = {"n_positions": L} if family == "gpt2" else {}
        net = models.build_model(family, "base", device=device, **over)
        if family == "mamba":   # run the HF model's mixers through archref's block with the fused scan
            for layer in net.backbone.layers:
                blk = Mamba(net.config.hidden_size, d_state=net.config.state_size, d_conv=net.config.conv_kernel,
                            expand=net.config.expand, scan="fused", device=device)
                blk.load_state_dict(layer.mixer.state_dict())
                layer.mixer = _MixerAdapter(blk)
        out[family] = {"params": models.n_parameters(net)}
        with torch.no_grad():
            out[family].update(timing(lambda net=net: net(ids), 1, family, device))
        del net
        bar.update(1)
    return out


def markdown(result, a):
    lines = [f"# Selective scan benchmark on {result['slug']}", "", f"Command: `{result['command']}`  ",
             f"Date (UTC): {result['date']}", "", "Machine: `" + json.dumps(result["machine"]) + "`", "",
             f"Device {result['device']}; batch 1, d_inner {a.d_inner}, N {a.state}, float32, {a.threads} torch "
             f"threads; medians (min-max) over {a.repeat} runs after a warm-up. Fused = {result['fused']}; "
             "reference = transformers' PyTorch scan. Peak memory = torch's allocator + numpy's arrays, each "
             "above its level at the start (an upper bound on the joint peak).", "",
             "| L | scan | median | min-max | peak memory (torch + numpy) |", "| --- | --- | --- | --- | --- |"]
    for r in result["scans"]:
        for name in ("reference", "sequential", "parallel", "fused"):
            if name in r:
                t = r[name]
                lines.append(f"| {r['L']} | {name} | {t['median_s']:.4f} s | {t['min_s']:.4f}-{t['max_s']:.4f} s "
                             f"| {t['peak_bytes'] / 2**20:.1f} MiB ({t['peak_torch_bytes'] / 2**20:.1f} + "
                             f"{t['peak_numpy_bytes'] / 2**20:.1f}) |")
    lines += [""] + [f"- L={r['L']}: fused {r['speedup_fused_vs_reference']:.1f}x the reference "
                     f"(parallel {r['speedup_parallel_vs_reference']:.2f}x); fused max error / scale "
                     f"{r['fused_max_abs_err_over_scale']:.1e}" for r in result["scans"]]
    lines += ["", "Decode (`archref.mamba.Mamba.step`, one token, d_model = d_inner/2):", ""]
    lines += [f"- after {r['context']} tokens: {r['median_s'] * 1e3:.3f} ms per token, state {r['state_bytes']} bytes"
              for r in result["decode_step"]]
    if "prefill" in result:
        pf = result["prefill"]
        lines += ["", f"Prefill of {pf['L']} tokens, one run: Mamba ({pf['mamba']['params']:,} parameters, archref "
                      f"block, fused scan) {pf['mamba']['median_s']:.1f} s; GPT-2 ({pf['gpt2']['params']:,} "
                      f"parameters) {pf['gpt2']['median_s']:.1f} s"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (on CUDA the fused scan is mamba-ssm's kernel)")
    p.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 8192])
    p.add_argument("--d-inner", type=int, default=1536)
    p.add_argument("--state", type=int, default=16)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch and numba threads (default: all cores)")
    p.add_argument("--decode-contexts", type=int, nargs="+", default=[16, 256, 2048])
    p.add_argument("--prefill", action="store_true", help="also time a ~130M Mamba vs GPT-2 prefill (slow on CPU)")
    p.add_argument("--prefill-length", type=int, default=8192)
    p.add_argument("--no-sequential", action="store_true", help="skip the course's sequential twin")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = p.parse_args(argv)
    device = pick_device(a.device)
    fastpaths.route_by_device()
    torch.set_num_threads(a.threads)
    import numba
    numba.set_num_threads(min(a.threads, numba.config.NUMBA_NUM_THREADS))

    slug = machine_slug() + ("-cuda" if device.type == "cuda" else "")
    n_steps = len(a.lengths) * (3 if a.no_sequential else 4) + len(a.decode_contexts) + (2 if a.prefill else 0)
    started = time.time()
    with tqdm(total=n_steps) as bar:
        command = recorded_command(argv=None if argv is None else ["bench/selective_scan.py", *argv], root=ROOT)
        result = {"slug": slug, "command": command,
                  "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "machine": describe_machine(),
                  "device": device.type, "fused": fused_implementation(device),
                  "torch_threads": torch.get_num_threads(), "numba_threads": numba.get_num_threads(),
                  "d_inner": a.d_inner, "state": a.state, "batch": 1,
                  "dtype": "float32", "scans": bench_scans(a, device, bar), "decode_step": bench_decode(a, device, bar)}
        if a.prefill:
            result["prefill"] = bench_prefill(a, device, bar)
    result["wall_s"] = time.time() - started

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"selective_scan-{slug}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(result, a))
    print(markdown(result, a))
    print(f"wrote {stem}.json and .md in {result['wall_s']:.0f} s")
    return result


if __name__ == "__main__":
    main()
