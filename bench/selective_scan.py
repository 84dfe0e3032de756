"""Benchmark of the selective scan (not a test): transformers' reference scan against the course's
sequential, parallel and fused (numba) scans, plus Mamba decode and prefill (issue 3, Performance).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/selective_scan.py [--lengths 512 2048 8192]
        [--d-inner 1536] [--state 16] [--repeat 5] [--threads 2] [--prefill] [--no-sequential]

Same inputs for every scan: batch 1, float32, d_inner channels, N state entries. The reference is
`transformers.models.mamba.modeling_mamba.mamba_selective_scan`, the pure-PyTorch loop the
MambaMixer falls back to without mamba-ssm (only the scan, from Δ to y, is timed). Every timing
warms up first (numba compiles in the warm-up) and reports the median and the spread over
`--repeat` runs. The fused scan is checked equal to the reference within 1e-5 relative to the
output's scale; peak memory is torch's allocator peak (archlab.measure.peak_memory).
Writes bench/results/selective_scan-<machine>.json and .md with the machine's description and the
command. The goal: fused >= 20x the reference at L = 8192.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402

from archlab import measure, models  # noqa: E402
from archref import ssm  # noqa: E402  (instructor-only: the course's fused scan)
from archlab.device import describe_machine  # noqa: E402
from archref.mamba import Mamba  # noqa: E402


def slug():
    return platform.node().split(".")[0] or "machine"


def inputs(L, d, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(1, L, d, generator=g)                              # (B, L, D)
    delta = F.softplus(torch.randn(1, L, d, generator=g) - 3)           # (B, L, D), Mamba-like steps
    A = -torch.arange(1, n + 1.0).repeat(d, 1)                          # (D, N), S4D-real
    Bm, C = torch.randn(1, L, n, generator=g), torch.randn(1, L, n, generator=g)   # (B, L, N)
    return u, delta, A, Bm, C, torch.ones(d)


def reference_scan(u, delta, A, Bm, C, D):
    from transformers.models.mamba import modeling_mamba
    return modeling_mamba.mamba_selective_scan(u.transpose(1, 2), delta.transpose(1, 2), A, Bm.transpose(1, 2),
                                               C.transpose(1, 2), D=D).transpose(1, 2)   # (B, L, D)


def timing(fn, repeat, what):
    t = measure.time_fn(fn, warmup=1, repeat=repeat, what=what)
    return {"median_s": t.median, "min_s": min(t.times), "max_s": max(t.times), "repeat": repeat}


def bench_scans(a, bar):
    rows = []
    for L in a.lengths:
        args = inputs(L, a.d_inner, a.state)
        fns = {"reference": lambda: reference_scan(*args), "parallel": lambda: ssm.selective_scan_parallel(*args),
               "fused": lambda: ssm.selective_scan_fused(*args)}
        if not a.no_sequential:
            fns["sequential"] = lambda: ssm.selective_scan_sequential(*args)
        row = {"L": L}
        for name, fn in fns.items():
            bar.set_description(f"scan {name} L={L}")
            row[name] = timing(fn, a.repeat, name)
            _, row[name]["peak_bytes"] = measure.peak_memory(fn)
            bar.update(1)
        ref, fused = reference_scan(*args), ssm.selective_scan_fused(*args)
        row["fused_max_abs_err_over_scale"] = float((fused - ref).abs().max() / ref.abs().max())
        row["fused_equal_1e-5"] = row["fused_max_abs_err_over_scale"] <= 1e-5
        row["speedup_fused_vs_reference"] = row["reference"]["median_s"] / row["fused"]["median_s"]
        row["speedup_parallel_vs_reference"] = row["reference"]["median_s"] / row["parallel"]["median_s"]
        rows.append(row)
    return rows


def bench_decode(a, bar):
    torch.manual_seed(0)
    blk = Mamba(a.d_inner // 2, d_state=a.state).eval()
    rows = []
    for ctx in a.decode_contexts:
        bar.set_description(f"decode after {ctx} tokens")
        x = torch.randn(1, ctx, blk.d_model)
        with torch.no_grad():
            state = None
            for t in range(ctx):   # build the state token by token, as decoding would
                _, state = blk.step(x[:, t:t + 1], state)
            x_t = torch.randn(1, 1, blk.d_model)
            t = timing(lambda: blk.step(x_t, state), a.repeat * 20, "step")
        rows.append({"context": ctx, **t, "state_bytes": measure.tensor_bytes(state)})
        bar.update(1)
    return rows


def bench_prefill(a, bar):
    L = a.prefill_length
    out = {"L": L}
    ids = torch.randint(0, 50000, (1, L))
    for family in ("mamba", "gpt2"):
        bar.set_description(f"prefill {family} L={L}")
        over = {"n_positions": L} if family == "gpt2" else {}
        net = models.build_model(family, "base", **over).eval()
        if family == "mamba":   # run the HF model's mixers through archlab's block with the fused scan
            for layer in net.backbone.layers:
                blk = Mamba(net.config.hidden_size, d_state=net.config.state_size, d_conv=net.config.conv_kernel,
                            expand=net.config.expand, scan="fused")
                blk.load_state_dict(layer.mixer.state_dict())
                layer.mixer = _MixerAdapter(blk)
        with torch.no_grad():
            out[family] = timing(lambda: net(ids), 1, family)
        bar.update(1)
    return out


class _MixerAdapter(torch.nn.Module):
    def __init__(self, blk):
        super().__init__()
        self.blk = blk

    def forward(self, hidden_states, *args, **kw):
        return self.blk(hidden_states)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 8192])
    p.add_argument("--d-inner", type=int, default=1536)
    p.add_argument("--state", type=int, default=16)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--decode-contexts", type=int, nargs="+", default=[16, 256, 2048])
    p.add_argument("--prefill", action="store_true", help="also time a 130M Mamba vs GPT-2 prefill (slow)")
    p.add_argument("--prefill-length", type=int, default=8192)
    p.add_argument("--no-sequential", action="store_true", help="skip the course's sequential twin")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    import numba
    numba.set_num_threads(min(a.threads, numba.config.NUMBA_NUM_THREADS))

    n_steps = len(a.lengths) * (3 if a.no_sequential else 4) + len(a.decode_contexts) + (2 if a.prefill else 0)
    started = time.time()
    with tqdm(total=n_steps) as bar:
        result = {"command": "OMP_WAIT_POLICY=PASSIVE .venv/bin/python " + " ".join(sys.argv),
                  "machine": describe_machine(), "numba_threads": numba.get_num_threads(),
                  "d_inner": a.d_inner, "state": a.state, "batch": 1, "dtype": "float32",
                  "scans": bench_scans(a, bar), "decode_step": bench_decode(a, bar)}
        if a.prefill:
            result["prefill"] = bench_prefill(a, bar)
    result["wall_s"] = time.time() - started

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"selective_scan-{slug()}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [f"# Selective scan benchmark on {slug()}", "", f"Command: `{result['command']}`", "",
             "Machine: `" + json.dumps(result["machine"]) + "`", "",
             f"batch 1, d_inner {a.d_inner}, N {a.state}, float32, {a.threads} threads; medians (min-max) over "
             f"{a.repeat} runs after a warm-up.", "",
             "| L | scan | median | min-max | peak torch memory |", "| --- | --- | --- | --- | --- |"]
    for r in result["scans"]:
        for name in ("reference", "sequential", "parallel", "fused"):
            if name in r:
                t = r[name]
                lines.append(f"| {r['L']} | {name} | {t['median_s']:.4f} s | {t['min_s']:.4f}-{t['max_s']:.4f} s "
                             f"| {t['peak_bytes'] / 2**20:.1f} MiB |")
    lines += [""] + [f"- L={r['L']}: fused {r['speedup_fused_vs_reference']:.1f}x the reference "
                     f"(parallel {r['speedup_parallel_vs_reference']:.2f}x); fused max error / scale "
                     f"{r['fused_max_abs_err_over_scale']:.1e}" for r in result["scans"]]
    lines += ["", "Decode (`Mamba.step`, one token, d_model = d_inner/2):", ""]
    lines += [f"- after {r['context']} tokens: {r['median_s'] * 1e3:.3f} ms per token, state {r['state_bytes']} bytes"
              for r in result["decode_step"]]
    if "prefill" in result:
        pf = result["prefill"]
        lines += ["", f"Prefill of {pf['L']} tokens: Mamba-130M (fused scan) {pf['mamba']['median_s']:.1f} s, "
                      f"GPT-2 small {pf['gpt2']['median_s']:.1f} s"]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
