"""`make bench`: notebook 05's measurements at full size, plus the selective-scan comparison.

    .venv/bin/python bench/run.py [--quick] [--device auto|cpu|cuda] [--threads N]

Four random-weight models of about GPT-2-small size (archlab.models "base" configs through
archlab.compare.build_equal_size: GPT-2 124M, Mamba ~130M, RWKV-4 ~130M (tied head), Jamba
~200M total of which ~110M read per token), batch 1:

* prefill time of a prompt of n tokens, n in 128, 512, 2048, 8192 (GPT-2's n_positions is
  raised from 1024 to 8208 for this: a longer learned position table, random weights anyway);
* cached decode time per token after n tokens (the cache of the timed prefill is reused);
* cache/state bytes after n tokens, measured (tensor bytes of the returned cache) and computed
  (archlab.compare.predicted_state_bytes) -- they must agree;
* the verdicts on the reading's §5 table, from archlab.compare.verdict (the same code as
  notebook 05).

Timing: torch.set_num_threads(--threads), OMP_WAIT_POLICY=PASSIVE, warm-up, synchronisation,
medians with min-max spread. Prompts of 4096 tokens or more are prefilled once (no warm-up, one
timed run: the prefill alone takes most of a minute on two cores); the results say so.
With --quick: tiny models, n in 32..256 (a smoke test; results go to <machine>-quick.*).

Writes bench/results/<machine>.json and bench/results/<machine>.md with
archlab.device.describe_machine() and the exact command. Budget: 15 minutes on 2 CPU cores.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its thread pool
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from archlab import compare, models  # noqa: E402
from archlab.device import describe_machine, pick_device, synchronize  # noqa: E402
from archlab.measure import tensor_bytes, time_fn  # noqa: E402

FULL_CONTEXTS = [128, 512, 2048, 8192]
QUICK_CONTEXTS = [32, 64, 128, 256]
SINGLE_RUN_FROM = 4096       # prompts this long are prefilled once, untimed warm-up skipped
DECODE_WARMUP, DECODE_STEPS = 2, 8


def slug():
    return platform.node().split(".")[0] or "machine"


def spread(times):
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "n": len(times)}


def prefill(model, n, device):
    """Time the prefill of n tokens; return (timing dict, the cache of the last timed run)."""
    ids = compare.random_ids(model, 1, n + DECODE_WARMUP + DECODE_STEPS, device=device)
    kept = {}

    def run():
        kept["cache"] = compare.forward(model, ids[:, :n])[1]

    single = n >= SINGLE_RUN_FROM
    t = time_fn(run, warmup=0 if single else 1, repeat=1 if single else 3, device=device)
    return {**spread(t.times), "warmup": t.warmup}, kept["cache"], ids


def decode(model, cache, ids, n, device):
    """Median seconds of one cached decode step after n tokens (warm-up steps untimed)."""
    times = []
    for i in range(DECODE_WARMUP + DECODE_STEPS):
        token = ids[:, n + i:n + i + 1]                     # (1, 1)
        synchronize(device)
        t0 = time.perf_counter()
        _, cache = compare.forward(model, token, cache)
        synchronize(device)
        if i >= DECODE_WARMUP:
            times.append(time.perf_counter() - t0)
    return spread(times)


def selective_scan_results(quick, threads, out_dir):
    """Run bench/selective_scan.py (issue 3's scan benchmark) in its own process; return its JSON.

    It writes selective_scan-<machine>.json into out_dir itself; its timings are CPU scans (it
    has no --device flag). A failure is recorded, not fatal.
    """
    path = ROOT / "bench" / "selective_scan.py"
    if not path.exists():
        return {"skipped": "bench/selective_scan.py not present"}
    cmd = [sys.executable, str(path), "--threads", str(threads), "--out", str(out_dir)]
    if quick:
        cmd += ["--lengths", "128", "256", "--repeat", "2", "--decode-contexts", "16", "64"]
    else:
        cmd += ["--prefill", "--repeat", "3"]   # the 130M Mamba against GPT-2 prefill at 8192 too
    before = {f: f.stat().st_mtime for f in Path(out_dir).glob("selective_scan-*.json")}
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired:
        return {"command": " ".join(cmd), "error": "timed out after 1200 s"}
    if proc.returncode != 0:
        return {"command": " ".join(cmd), "error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    new = [f for f in Path(out_dir).glob("selective_scan-*.json") if before.get(f) != f.stat().st_mtime]
    result = json.loads(new[0].read_text()) if new else {"stdout": proc.stdout[-2000:]}
    return {"command": " ".join(cmd), "file": new[0].name if new else None, "result": result}


def markdown(res):
    m = res["machine"]
    lines = [f"# Architecture benchmark: {res['slug']}", "",
             f"Command: `{res['command']}`  ", f"Date (UTC): {res['date']}  ",
             f"Machine: {m['cpu_model']}, {m['logical_cores']} logical cores, torch threads {res['threads']}, "
             f"torch {m['torch']}, transformers {m['transformers']}, device {res['device']}"
             + (f", GPU {m['cuda_devices'][0]['name']}" if m["cuda_devices"] else "") + "  ",
             f"Models ({res['size']}): " + ", ".join(f"{compare.LABELS[f]} {r['params']:,} params"
                                                     for f, r in res["models"].items()), "",
             "Batch 1. Prefill: median (min-max) over the timed runs; prompts of "
             f"{SINGLE_RUN_FROM}+ tokens are a single cold run. Decode: median (min-max) of "
             f"{DECODE_STEPS} cached steps after {DECODE_WARMUP} warm-up steps.", "",
             "| model | n | prefill ms | decode ms/token | cache bytes (measured = computed) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for fam, r in res["models"].items():
        for i, n in enumerate(res["contexts"]):
            p, d = r["prefill"][i], r["decode"][i]
            agree = "=" if r["state_bytes"][i] == r["predicted_bytes"][i] else "≠ " + f"{r['predicted_bytes'][i]:,}"
            lines.append(f"| {compare.LABELS[fam]} | {n} | {p['median'] * 1e3:.1f} ({p['min'] * 1e3:.1f}-"
                         f"{p['max'] * 1e3:.1f}) | {d['median'] * 1e3:.2f} ({d['min'] * 1e3:.2f}-{d['max'] * 1e3:.2f}) "
                         f"| {r['state_bytes'][i]:,} {agree} |")
    lines += ["", "## The reading's §5 table, measured", "", res["verdict_table"], "",
              "## Selective scan (bench/selective_scan.py)", "",
              f"Command: `{res['selective_scan'].get('command', '-')}`; full results in "
              f"`{res['selective_scan'].get('file') or res['selective_scan']}`.", ""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny models, short contexts (smoke test)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="results folder")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    contexts = QUICK_CONTEXTS if args.quick else FULL_CONTEXTS
    size = "tiny" if args.quick else "base"
    t_start = time.perf_counter()
    built = compare.build_equal_size(size, max_context=max(contexts) + DECODE_WARMUP + DECODE_STEPS, device=device)
    res = {"slug": slug() + ("-quick" if args.quick else ""), "command": " ".join([".venv/bin/python bench/run.py",
                                                                                   *(argv or sys.argv[1:])]),
           "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "machine": describe_machine(),
           "threads": torch.get_num_threads(), "device": device.type, "size": size, "batch": 1,
           "contexts": contexts, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "models": {}}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    bar = tqdm(total=len(built) * len(contexts), desc="bench", unit="point")
    for fam, model in built.items():
        row = {"params": models.count_params(model), "prefill": [], "decode": [], "state_bytes": [],
               "predicted_bytes": []}
        for n in contexts:
            bar.set_postfix_str(f"{fam} n={n}")
            p, cache, ids = prefill(model, n, device)
            row["state_bytes"].append(int(tensor_bytes(cache)))
            row["predicted_bytes"].append(compare.predicted_state_bytes(model.config, n))
            row["prefill"].append(p)
            row["decode"].append(decode(model, cache, ids, n, device))
            del cache
            bar.update()
        row["prefill_s"] = [p["median"] for p in row["prefill"]]
        row["decode_s"] = [d["median"] for d in row["decode"]]
        res["models"][fam] = row
        del model
    bar.close()
    if device.type == "cuda":
        res["gpu_peak_bytes"] = int(torch.cuda.max_memory_allocated(device))
    res["verdicts"] = {cid: compare.verdict(cid, res) for cid in compare.CLAIMS}
    res["figures"] = {cid: v[1] for cid, v in compare.measured_figures(res).items()}
    res["verdict_table"] = compare.verdict_table(res)
    print("selective scan ...", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res["selective_scan"] = selective_scan_results(args.quick, args.threads, out)
    res["seconds"] = time.perf_counter() - t_start

    (out / f"{res['slug']}.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / f"{res['slug']}.md").write_text(markdown(res))
    print(res["verdict_table"])
    print(f"wrote {out / res['slug']}.json and .md in {res['seconds']:.0f} s")
    return res


if __name__ == "__main__":
    main()
