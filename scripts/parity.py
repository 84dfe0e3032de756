"""Compare two runs of the notebooks (a CUDA run against a CPU run) and write one report.

    python scripts/parity.py RUN REFERENCE [--out DIR]

RUN and REFERENCE are folders written by `python -m autograder execute` (each holds
<id>.ipynb, the executed notebook, and <id>.parity.json, its parity record: archlab.parity).
Every value a notebook recorded is compared within the tolerance of its kind
(archlab.parity.TOLERANCES: exact, close, loose). The report, parity.md and parity.json in
--out (default: RUN's parent folder), gives per notebook: parity, seconds in each run (papermill's
own duration), which implementation each fast path used (archlab.fastpaths), and both machines.

Exit status: 0 every notebook has both records and every value agrees; 1 otherwise.
"""

import argparse
import json
import sys
from pathlib import Path

from archlab import parity
from archlab.device import recorded_command

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ("01_self_attention", "02_mamba", "03_rwkv", "04_jamba_moe", "05_comparison", "06_open_llms",
               "07_practice_lab")


def load_run(folder):
    """{notebook: {"record": dict | None, "seconds": float | None}} for every notebook the folder has."""
    folder = Path(folder)
    ids = sorted({p.name.split(".")[0] for p in folder.glob("*.parity.json")}
                 | {p.stem for p in folder.glob("*.ipynb")})
    run = {}
    for nb in ids:
        rec = folder / f"{nb}.parity.json"
        executed = folder / f"{nb}.ipynb"
        seconds = None
        if executed.exists():
            seconds = json.loads(executed.read_text()).get("metadata", {}).get("papermill", {}).get("duration")
        run[nb] = {"record": json.loads(rec.read_text()) if rec.exists() else None, "seconds": seconds}
    return run


def compare_runs(run, reference):
    """{"ok": bool, "notebooks": {id: {"ok", "problem", "rows", "seconds": [run, ref]}}}."""
    out = {}
    for nb in sorted(set(run) | set(reference), key=lambda n: (n not in ASSIGNMENTS, n)):
        a, b = run.get(nb, {}), reference.get(nb, {})
        entry = {"seconds": [a.get("seconds"), b.get("seconds")], "rows": [], "problem": None}
        if not a.get("record") or not b.get("record"):
            missing = [label for label, side in (("run", a), ("reference", b)) if not side.get("record")]
            entry["problem"] = f"no parity record in the {' and '.join(missing)} (the notebook failed or did not run)"
        else:
            entry["rows"] = parity.compare_records(a["record"], b["record"])
            if not entry["rows"]:
                entry["problem"] = "the record holds no values"
        entry["ok"] = entry["problem"] is None and all(r["ok"] for r in entry["rows"])
        out[nb] = entry
    return {"ok": bool(out) and all(e["ok"] for e in out.values()), "notebooks": out}


def _machine(run):
    for side in run.values():
        if side.get("record"):
            return side["record"]["machine"], side["record"]["device"]
    return None, None


def markdown(result, run, reference, labels):
    lines = ["# Parity: the notebooks on two devices", "",
             f"Command: `{result['command']}`  ",
             f"Result: **{'PASS' if result['ok'] else 'FAIL'}**: every value within the tolerance of its kind "
             "(`archlab.parity.TOLERANCES`: exact; close |a-b| <= 1e-4 + 1e-2|b|; loose |a-b| <= 0.05 + 0.25|b|).", ""]
    for label, r in zip(labels, (run, reference)):
        m, device = _machine(r)
        if m:
            gpu = ", ".join(d["name"] for d in m.get("cuda_devices", [])) or "no GPU"
            lines.append(f"- {label}: device {device}; {m['cpu_model']}, {m['logical_cores']} cores, {gpu}; "
                         f"torch {m['torch']} (CUDA {m.get('cuda_runtime') or '-'}), transformers {m['transformers']}")
    lines += ["", f"| notebook | parity | values | seconds {labels[0]} | seconds {labels[1]} |",
              "| --- | --- | ---: | ---: | ---: |"]
    for nb, e in result["notebooks"].items():
        sec = [f"{s:.1f}" if s is not None else "-" for s in e["seconds"]]
        verdict = "ok" if e["ok"] else "FAIL"
        lines.append(f"| {nb} | {verdict} | {len(e['rows'])} | {sec[0]} | {sec[1]} |")
    bad = [(nb, e) for nb, e in result["notebooks"].items() if not e["ok"]]
    if bad:
        lines += ["", "## Differences", ""]
        for nb, e in bad:
            if e["problem"]:
                lines.append(f"- {nb}: {e['problem']}")
            for r in e["rows"]:
                if not r["ok"]:
                    lines.append(f"- {nb}: `{r['name']}` ({r['kind']}): {r['where']}")
    for label, r in zip(labels, (run, reference)):
        lines += ["", f"## What ran: {label}", ""]
        for nb, side in r.items():
            if side.get("record"):
                lines.append(f"- {nb}:")
                lines += [f"    - {k}: {v}" for k, v in side["record"]["fast_paths"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="folder of the run to check (e.g. the CUDA run)")
    ap.add_argument("reference", help="folder of the reference run (e.g. the CPU run)")
    ap.add_argument("--out", help="folder for parity.md and parity.json (default: RUN's parent)")
    args = ap.parse_args(argv)
    run, reference = load_run(args.run), load_run(args.reference)
    labels = [f"{Path(p).name} ({_machine(r)[1] or '?'})" for p, r in ((args.run, run), (args.reference, reference))]
    result = compare_runs(run, reference)
    result["command"] = recorded_command(["scripts/parity.py", *(sys.argv[1:] if argv is None else argv)], root=ROOT)
    result["labels"] = labels
    result["machines"] = {labels[0]: _machine(run)[0], labels[1]: _machine(reference)[0]}
    out = Path(args.out) if args.out else Path(args.run).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "parity.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "parity.md").write_text(markdown(result, run, reference, labels))
    print(f"parity: {'PASS' if result['ok'] else 'FAIL'} ({sum(e['ok'] for e in result['notebooks'].values())} of "
          f"{len(result['notebooks'])} notebooks agree); report in {out / 'parity.md'}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
