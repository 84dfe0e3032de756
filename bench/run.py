"""`make bench` (first command): notebook 05's measurements at full size, on the CPU or a GPU.

    .venv/bin/python bench/run.py [--quick] [--device auto|cpu|cuda] [--threads N] [--out DIR]

Four random-weight models of about GPT-2-small size (archlab.equal_size.build_equal_size("base"):
GPT-2, Mamba, RWKV-4, Jamba); their total and active parameters (a decode step of Jamba's
mixture of experts reads top-2 of 8 experts) are counted from the models and written with the
results. Batch 1:

* prefill time of a prompt of n tokens, n in 128, 512, 2048, 8192 (GPT-2's n_positions is
  raised from 1024 to cover them: a longer learned position table, random weights anyway);
* cached decode time per token after n tokens (the cache of the timed prefill is reused);
* cache/state bytes after n tokens, measured (tensor bytes of the returned cache) and computed
  (archlab.cost.predicted_state_bytes) -- they must agree;
* the verdicts on the reading's §5 table, from archlab.verdicts.verdict (the same code as
  notebook 05): "holds", "does not hold here" or "not measured here (needs X)", with each
  claim's rule in the table;
* which implementation each fast path used (archlab.fastpaths).

Timing: torch.set_num_threads(--threads), OMP_WAIT_POLICY=PASSIVE, warm-up, synchronisation,
medians with min-max spread. Prompts of 4096 tokens or more are prefilled once (no warm-up, one
timed run: the prefill alone takes most of a minute on two cores); the results say so.
With --quick: tiny models, n in 32..256 (a smoke test; results go to <machine>-quick.*).

Writes bench/results/<machine>.json and .md with archlab.device.describe_machine() and the
command that ran. The selective-scan comparison is `make bench`'s second command,
bench/selective_scan.py, with its own result files. Budget: 15 minutes on 2 CPU cores.
"""

import os

from autograder import contract

contract.apply_kernel_env()   # as make gives it, before torch starts its thread pool

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from archlab import cost, equal_size, fastpaths, models, verdicts  # noqa: E402
from archlab.device import describe_machine, machine_slug, pick_device, recorded_command, synchronize  # noqa: E402
from archlab.measure import tensor_bytes, time_fn  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FULL_CONTEXTS = [128, 512, 2048, 8192]
QUICK_CONTEXTS = [32, 64, 128, 256]
SINGLE_RUN_FROM = 4096       # prompts this long are prefilled once, untimed warm-up skipped
DECODE_WARMUP, DECODE_STEPS = 2, 8


def spread(times):
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "n": len(times)}


def prefill(model, n, device):
    """Time the prefill of n tokens; return (timing dict, the cache of the last timed run)."""
    ids = equal_size.random_ids(model, 1, n + DECODE_WARMUP + DECODE_STEPS, device=device)
    kept = {}

    def run():
        kept["cache"] = equal_size.forward(model, ids[:, :n])[1]

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
        _, cache = equal_size.forward(model, token, cache)
        synchronize(device)
        if i >= DECODE_WARMUP:
            times.append(time.perf_counter() - t0)
    return spread(times)


def markdown(res):
    m = res["machine"]
    gpu = f", GPU {m['cuda_devices'][0]['name']}" if m["cuda_devices"] else ""
    lines = [f"# Architecture benchmark: {res['slug']}", "",
             f"Command: `{res['command']}`  ", f"Date (UTC): {res['date']}  ",
             f"Machine: {m['cpu_model']}, {m['logical_cores']} logical cores, torch threads {res['threads']}, "
             f"torch {m['torch']}, transformers {m['transformers']}, device {res['device']}{gpu}", ""]
    if "rederived" in res:
        lines += [f"Derived fields (verdicts, table, parameter counts) recomputed on {res['rederived']['date']} by "
                  f"`{res['rederived']['command']}`; the measurements are those of the command above.", ""]
    lines += [f"Models ({res['size']}, random weights; parameters counted from the models):", "",
              "| model | total parameters | active per token |", "| --- | ---: | ---: |"]
    lines += [f"| {equal_size.LABELS[f]} | {r['params']:,} | {r['active_params']:,} |"
              for f, r in res["models"].items()]
    lines += ["", "Batch 1. Prefill: median (min-max) over the timed runs; prompts of "
              f"{SINGLE_RUN_FROM}+ tokens are a single cold run. Decode: median (min-max) of "
              f"{DECODE_STEPS} cached steps after {DECODE_WARMUP} warm-up steps.", "",
              "| model | n | prefill ms | decode ms/token | cache bytes (measured = computed) |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for fam, r in res["models"].items():
        for i, n in enumerate(res["contexts"]):
            p, d = r["prefill"][i], r["decode"][i]
            agree = "=" if r["state_bytes"][i] == r["predicted_bytes"][i] else "≠ " + f"{r['predicted_bytes'][i]:,}"
            lines.append(f"| {equal_size.LABELS[fam]} | {n} | {p['median'] * 1e3:.1f} ({p['min'] * 1e3:.1f}-"
                         f"{p['max'] * 1e3:.1f}) | {d['median'] * 1e3:.2f} ({d['min'] * 1e3:.2f}-{d['max'] * 1e3:.2f}) "
                         f"| {r['state_bytes'][i]:,} {agree} |")
    lines += ["", "## The reading's §5 table, measured", "", res["verdict_table"], "",
              "## What ran (archlab.fastpaths)", ""]
    lines += [f"- {k}: {v}" for k, v in res["fast_paths"].items()]
    return "\n".join(lines) + "\n"


def derive(res):
    """The fields of a results dict that follow from its measurements (verdicts, figures, the table)."""
    res["verdicts"] = {cid: verdicts.verdict(cid, res) for cid in verdicts.CLAIMS}
    res["figures"] = {cid: v[1] for cid, v in verdicts.measured_figures(res).items()}
    res["verdict_table"] = verdicts.verdict_table(res)
    res["verdict_rule"] = verdicts.VERDICT_RULE


def rederive(path, argv):
    """Rewrite ``path`` (.json and .md) with the derived fields recomputed; the measurements stay as they ran."""
    res = json.loads(path.read_text())
    res.pop("selective_scan", None)   # older files embedded the scan benchmark; it has its own files now
    max_context = max(res["contexts"]) + DECODE_WARMUP + DECODE_STEPS
    for fam, row in res["models"].items():   # sizes from the models (built on the meta device: shapes only)
        cfg = models.make_config(fam, res["size"], **equal_size.equal_size_overrides(fam, res["size"], max_context))
        meta = models.meta_model(cfg)
        row["params"], row["active_params"] = models.n_parameters(meta), cost.active_params(meta)
    derive(res)
    res.setdefault("fast_paths", {"not recorded": "this run predates archlab.fastpaths"})
    res["rederived"] = {"command": recorded_command(argv=None if argv is None else ["bench/run.py", *argv], root=ROOT),
                        "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                        "what": "verdicts, figures, table and parameter counts recomputed from the stored measurements"}
    path.write_text(json.dumps(res, indent=1) + "\n")
    path.with_suffix(".md").write_text(markdown(res))
    print(res["verdict_table"])
    print(f"rewrote {path} and its .md (measurements unchanged)")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny models, short contexts (smoke test)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="results folder")
    ap.add_argument("--rederive", metavar="JSON", help="measure nothing: recompute the verdicts, tables, sizes and "
                    "report of a results file with today's code (its measurements and command are kept)")
    args = ap.parse_args(argv)
    if args.rederive:
        return rederive(Path(args.rederive), argv)

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    fastpaths.route_by_device()
    contexts = QUICK_CONTEXTS if args.quick else FULL_CONTEXTS
    size = "tiny" if args.quick else "base"
    t_start = time.perf_counter()
    built = equal_size.build_equal_size(size, max_context=max(contexts) + DECODE_WARMUP + DECODE_STEPS, device=device)
    command = recorded_command(argv=None if argv is None else ["bench/run.py", *argv], root=ROOT)
    res = {"slug": machine_slug() + ("-cuda" if device.type == "cuda" else "") + ("-quick" if args.quick else ""),
           "command": command,
           "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "machine": describe_machine(),
           "threads": torch.get_num_threads(), "device": device.type, "size": size, "batch": 1,
           "contexts": contexts, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "models": {}}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    bar = tqdm(total=len(built) * len(contexts), desc="bench", unit="point")
    for fam, model in built.items():
        row = {"params": models.n_parameters(model), "active_params": cost.active_params(model), "prefill": [],
               "decode": [], "state_bytes": [], "predicted_bytes": []}
        for n in contexts:
            bar.set_postfix_str(f"{fam} n={n}")
            p, cache, ids = prefill(model, n, device)
            row["state_bytes"].append(int(tensor_bytes(cache)))
            row["predicted_bytes"].append(cost.predicted_state_bytes(model.config, n))
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
    derive(res)
    res["fast_paths"] = fastpaths.report(device)
    res["seconds"] = time.perf_counter() - t_start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    (out / f"{res['slug']}.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / f"{res['slug']}.md").write_text(markdown(res))
    print(res["verdict_table"])
    print(f"wrote {out / res['slug']}.json and .md in {res['seconds']:.0f} s")
    return res


if __name__ == "__main__":
    main()
