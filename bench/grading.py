"""Benchmark of the grader (not a test): N submissions of notebook 01 graded with 1 and with 2
workers, against plain papermill execution of the same notebook.

    .venv/bin/python bench/grading.py [--n 40] [--baseline 5]

Writes bench/results/grading-<machine>.json and .md with the machine's description. The goal
(issue 8): grading costs at most 1.2x plain execution per submission with one worker.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))   # nbtools builds submissions from the release

import nbformat  # noqa: E402

import nbtools  # noqa: E402
from archlab.device import describe_machine  # noqa: E402
from autograder import autograde, execute, grade, sandbox  # noqa: E402

NB = "01_self_attention"


def slug():
    return platform.node().split(".")[0] or "machine"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--baseline", type=int, default=5)
    a = p.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tmp = Path(tempfile.mkdtemp(prefix="bench-grading-", dir=ROOT / "build"))
    plain = []
    for i in range(a.baseline):
        _, seconds = execute.execute(NB, out_dir=tmp / "plain", QUICK=True)
        plain.append(seconds)
        print(f"papermill {i + 1}/{a.baseline}: {seconds:.1f} s", flush=True)
    rel = nbtools.release_nb(NB)
    answers = nbtools.solution_answers(NB)
    subs = tmp / "submissions"
    for i in range(a.n):
        path = subs / f"s{i:03d}" / NB / f"{NB}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nbtools.submission(rel, answers), path)
    runs = {}
    for workers in (1, 2):
        ws = tmp / f"ws{workers}"
        grade.prepare_workspace(ws)
        from autograder import collect
        collect.collect(subs, ws)
        t0 = time.perf_counter()
        records = autograde.autograde(ws, workers=workers)
        wall = time.perf_counter() - t0
        assert all(r["status"] == "graded" for r in records), [r for r in records if r["status"] != "graded"][:1]
        per = [r["seconds"] for r in records]
        runs[workers] = {"wall_s": wall, "per_submission_wall_s": wall / a.n,
                         "per_submission_median_s": statistics.median(per),
                         "per_submission_min_s": min(per), "per_submission_max_s": max(per)}
        print(f"{workers} worker(s): {wall:.1f} s for {a.n} submissions ({wall / a.n:.2f} s each)", flush=True)
    base = statistics.median(plain)
    result = {
        "machine": describe_machine(), "command": "python bench/grading.py " + " ".join(sys.argv[1:]),
        "isolated": sandbox.available()[0], "submissions": a.n, "notebook": NB,
        "papermill_s": {"median": base, "min": min(plain), "max": max(plain), "runs": plain},
        "grading": runs,
        "overhead_1_worker": runs[1]["per_submission_wall_s"] / base,
        "speedup_2_workers": runs[1]["wall_s"] / runs[2]["wall_s"],
    }
    out = ROOT / "bench" / "results" / f"grading-{slug()}.json"
    out.write_text(json.dumps(result, indent=1))
    m = result["machine"]
    md = f"""# Grading benchmark ({m.get('cpu_model')}, {m.get('logical_cores')} cores)

Command: `{result['command']}`; jailed kernels: {result['isolated']}; notebook {NB}, QUICK.

| what | seconds per submission |
| --- | ---: |
| plain papermill execution (median of {a.baseline}) | {base:.2f} |
| grader, 1 worker ({a.n} submissions, wall / n) | {runs[1]['per_submission_wall_s']:.2f} |
| grader, 2 workers ({a.n} submissions, wall / n) | {runs[2]['per_submission_wall_s']:.2f} |

Overhead of grading against plain execution, 1 worker: **{result['overhead_1_worker']:.2f}x**
(goal: at most 1.2x). Two workers grade the batch {result['speedup_2_workers']:.2f}x faster than one.
"""
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
