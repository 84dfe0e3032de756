"""Benchmark of the grader (not a test): a class of N students, each submitting every notebook
with the solution's answers, graded through the real command, against plain execution of the
same notebooks.

    .venv/bin/python bench/grading.py                   # 4 students: plain, local pool of 1 and 2 workers
    .venv/bin/python bench/grading.py --backend dask    # 6 students (42 submissions): also Dask, 2 workers
    make bench-grading                                  # = --backend dask

1. Plain: each notebook's prepared submission (what the grader runs: the student's answers
   with the course's test cells, hidden tests included) executed with papermill in a fresh
   folder, unjailed, all cores, NBGRADER_EXECUTION set as the grader sets it: cold (the
   notebook's build/<id>_* caches moved aside; the jail never shows them, so graded kernels
   are always cold) and then warm.
2. Graded: `python -m autograder grade SUBMISSIONS --workers 1`, `--workers 2` (and
   `--cluster local:2`), each command timed whole (collect, nbgrader's assignment records,
   autograde, feedback, export), each in a fresh workspace. Seconds per notebook come from each
   submission's result (prepare + jailed execution + judging, in its worker).
3. Derived: the speed-up of two workers; each notebook beside another against alone; a
   student's graded notebooks against their cold plain executions (the grading overhead, same
   submissions, same cold caches, whole command); Dask against the pool; and a projection for
   500 students x 7 notebooks on 1, 16 and 64 workers from the measured costs.

Writes bench/results/grading-<machine>.json and .md with the machine's description, the
commands that ran and the load average around each phase (other jobs on the machine inflate
every figure: run it on a quiet machine).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from archlab.device import describe_machine, machine_slug, recorded_command
from autograder import contract, nbg, paths
from autograder.course import execute
from autograder.grading import autograde, results, sandbox, submission
from autograder.reports import export, feedback

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))   # nbtools builds submissions from the release
import nbtools  # noqa: E402

WORK = ROOT / "build" / "bench-grading"
CLASS, NOTEBOOKS, PROJECTED_WORKERS = 500, 7, (1, 16, 64)


def rel(path):
    return os.path.relpath(path, ROOT)


def python():
    exe = Path(os.path.abspath(sys.executable))     # the venv's python, not what its link points to
    return rel(exe) if exe.is_relative_to(ROOT) else str(exe)


def load():
    return [round(x, 2) for x in os.getloadavg()]


def spread(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def make_class(students, assignments):
    """WORK/submissions/s<k>/<id>/<id>.ipynb: the solution's answers, for every student."""
    subs = WORK / "submissions"
    for a in assignments:
        nb = nbtools.submission(nbtools.release_nb(a), nbtools.solution_answers(a))
        for k in range(students):
            path = subs / f"s{k:02d}" / a / f"{a}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
    return subs


def plain(subs, assignments):
    """{id: {"cold": s, "warm": s}}: the graded notebook executed without the grader."""
    out = {}
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        for a in assignments:
            prepared = submission.prepare(next(subs.glob(f"*/{a}/{a}.ipynb")), a)
            folder = WORK / "plain" / a
            folder.mkdir(parents=True, exist_ok=True)
            src = folder / f"{a}.ipynb"
            nbformat.write(prepared.notebook, src)
            # no parity record: not a full run
            out[a] = execute.cold_and_warm(a, out_dir=folder / "out", source=src, record=False)
            print(f"plain {a}: cold {out[a]['cold']:.1f} s, warm {out[a]['warm']:.1f} s", flush=True)
    finally:
        del os.environ["NBGRADER_EXECUTION"]
    return out


def graded(subs, name, options):
    """Run the grade command in a fresh workspace; its wall time, command and results."""
    ws = WORK / f"ws-{name}"
    shutil.rmtree(ws, ignore_errors=True)
    cmd = [python(), "-m", "autograder", "grade", rel(subs), "--workspace", rel(ws),
           "--out", rel(WORK / f"grades-{name}.csv"), *options]
    before = load()
    t0 = time.perf_counter()
    with open(WORK / f"log-{name}.txt", "w") as log:
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    records = list(results.load(ws).values())
    failed = [f"{r.student_id} {r.assignment}: {r.reason}" for r in records if r.status != "graded"]
    for f in failed:     # timings of a failed submission are cut short: reported, not hidden
        print(f"{name}: NOT GRADED {f}", flush=True)
    per_nb = {}
    for r in records:
        per_nb.setdefault(r.assignment, []).append(r.seconds)
    per_student = {}
    for r in records:
        per_student[r.student_id] = per_student.get(r.student_id, 0.0) + r.seconds
    print(f"{name}: {wall:.1f} s for {len(records)} submissions", flush=True)
    return {"command": " ".join(cmd), "wall_s": wall, "submissions": len(records), "failed": failed,
            "threads_per_kernel": sorted({r.threads for r in records}),
            "isolated": all(r.isolated for r in records), "load_before": before, "load_after": load(),
            "per_notebook_s": {a: spread(s) for a, s in sorted(per_nb.items())},
            "per_student_s": spread(list(per_student.values())), "workspace": ws}


def serial_costs(run):
    """Seconds per submission that only the instructor's process spends (it cannot be spread
    over workers): recording into the gradebook, feedback, export. Measured in this process on
    the results of `run`: recorded again into a fresh workspace, feedback and export redone."""
    records = [r for r in results.load(run["workspace"]).values() if r.status == "graded"]
    ws = WORK / "ws-serial"
    shutil.rmtree(ws, ignore_errors=True)
    autograde.prepare_assignments(ws, {r.assignment for r in records})
    cfg = nbg.config(ws)
    t0 = time.perf_counter()
    for r in records:
        autograde._record(ws, cfg, r)
    record_s = (time.perf_counter() - t0) / len(records)
    t0 = time.perf_counter()
    feedback.generate(ws)
    feedback_s = (time.perf_counter() - t0) / len(records)
    t0 = time.perf_counter()
    export.write(export.rows(ws), WORK / "serial.csv")
    export_s = (time.perf_counter() - t0) / len(records)
    return {"record_s": record_s, "feedback_s": feedback_s, "export_s": export_s}


def projection(per_nb, serial, fixed_s):
    """Wall time of CLASS students x NOTEBOOKS on W workers, each worker one kernel at a time
    on one core (as measured beside another kernel here), the instructor's process recording
    results as they arrive:

        wall(W) = fixed + max(N * sum_nb t_nb / W + max_nb t_nb,  N * 7 * t_record) + N * 7 * (t_feedback + t_export)
    """
    student = sum(per_nb.values())
    subs = CLASS * NOTEBOOKS
    rows = {}
    for w in PROJECTED_WORKERS:
        tasks = CLASS * student / w + max(per_nb.values())
        rows[w] = {"tasks_s": tasks, "recording_s": subs * serial["record_s"],
                   "wall_s": fixed_s + max(tasks, subs * serial["record_s"])
                   + subs * (serial["feedback_s"] + serial["export_s"])}
    saturation = student / (NOTEBOOKS * serial["record_s"])
    return {"per_student_s": student, "rows": rows, "recording_saturates_at_workers": saturation}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("pool", "dask"), default="pool",
                   help="dask: also grade the batch on a Dask LocalCluster of 2 workers")
    p.add_argument("--students", type=int, default=None, help="default 4 (pool), 6 with --backend dask")
    p.add_argument("--name", default=None, help="results file stem (default grading-<machine>)")
    a = p.parse_args()
    students = a.students or (6 if a.backend == "dask" else 4)
    contract.apply_kernel_env()
    assignments = paths.present_assignments()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    t_start = time.perf_counter()
    subs = make_class(students, assignments)
    runs = {}
    load_plain = load()
    plain_s = plain(subs, assignments)
    runs["pool-1"] = graded(subs, "pool-1", ["--workers", "1"])
    runs["pool-2"] = graded(subs, "pool-2", ["--workers", "2"])
    if a.backend == "dask":
        runs["dask-2"] = graded(subs, "dask-2", ["--cluster", "local:2"])
    serial = serial_costs(runs["pool-2"])
    n_subs = students * len(assignments)
    # what the whole command spends besides the tasks: grade's fixed cost, from the 1-worker run
    task_sum = sum(s["median"] * s["n"] for s in runs["pool-1"]["per_notebook_s"].values())
    fixed = max(0.0, runs["pool-1"]["wall_s"] - task_sum - n_subs * sum(serial.values()))
    per_nb_2 = {nb: s["median"] for nb, s in runs["pool-2"]["per_notebook_s"].items()}
    cold_sum = sum(s["cold"] for s in plain_s.values())
    derived = {
        "speedup_2_workers": runs["pool-1"]["wall_s"] / runs["pool-2"]["wall_s"],
        "beside_over_alone": {nb: runs["pool-2"]["per_notebook_s"][nb]["median"]
                              / runs["pool-1"]["per_notebook_s"][nb]["median"] for nb in assignments},
        "student_tasks_over_cold_plain": runs["pool-1"]["per_student_s"]["median"] / cold_sum,
        "student_command_over_cold_plain": runs["pool-1"]["wall_s"] / students / cold_sum,
        "fixed_s": fixed,
    }
    if "dask-2" in runs:
        derived["dask_over_pool_2_workers"] = runs["dask-2"]["wall_s"] / runs["pool-2"]["wall_s"]
    result = {
        "machine": describe_machine(), "command": recorded_command(root=ROOT),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "isolated": sandbox.available()[0],
        "students": students, "notebooks": assignments, "submissions": n_subs,
        "load_before_plain": load_plain, "plain_s": plain_s,
        "graded": {k: {kk: vv for kk, vv in v.items() if kk != "workspace"} for k, v in runs.items()},
        "serial_per_submission_s": serial, "derived": derived,
        "projection": projection(per_nb_2, serial, fixed), "seconds": time.perf_counter() - t_start,
    }
    out = ROOT / "bench" / "results" / f"{a.name or 'grading-' + machine_slug()}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {rel(out)} and {rel(out.with_suffix('.md'))}")


def markdown(r):
    m, d, g = r["machine"], r["derived"], r["graded"]
    nbs = r["notebooks"]
    lines = [f"# Grading benchmark: {machine_slug()}", "",
             f"Command: `{r['command']}`  ",
             f"Date (UTC): {r['date_utc']}; took {r['seconds'] / 60:.0f} min  ",
             f"Machine: {m.get('cpu_model')}, {m.get('logical_cores')} logical cores, "
             f"{m.get('ram_bytes', 0) / 2**30:.0f} GiB, "
             f"torch {m.get('torch')}; jailed kernels: {r['isolated']}  ",
             f"Load average (1, 5, 15 min) before the plain runs: {r['load_before_plain']}; "
             + "; ".join(f"{k}: {v['load_before']} -> {v['load_after']}" for k, v in g.items())
             + " (other jobs inflate every figure)", "",
             f"Batch: {r['students']} students x {len(nbs)} notebooks = {r['submissions']} submissions, "
             "each the solution's answers.", "",
             "## Seconds per notebook", "",
             "Plain: the prepared submission (what the grader runs) executed by papermill, unjailed, all cores; "
             "cold = the notebook's build/ caches moved aside (graded kernels never see them), warm = run again. "
             "Graded: median (min-max) over the batch of each submission's prepare + jailed execution + judging.", "",
             "| notebook | plain cold | plain warm | graded, 1 worker (alone) | graded, 2 workers (beside another) "
             "| beside / alone |" + (" graded, Dask 2 workers |" if "dask-2" in g else ""),
             "| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if "dask-2" in g else "")]

    def cell(run, nb):
        s = g[run]["per_notebook_s"][nb]
        return f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})"

    for nb in nbs:
        lines.append(f"| {nb} | {r['plain_s'][nb]['cold']:.1f} | {r['plain_s'][nb]['warm']:.1f} | "
                     f"{cell('pool-1', nb)} | {cell('pool-2', nb)} | {d['beside_over_alone'][nb]:.2f}x |"
                     + (f" {cell('dask-2', nb)} |" if "dask-2" in g else ""))
    cold = sum(s["cold"] for s in r["plain_s"].values())
    warm = sum(s["warm"] for s in r["plain_s"].values())
    lines += [f"| **one student, all notebooks** | {cold:.1f} | {warm:.1f} | "
              f"{g['pool-1']['per_student_s']['median']:.1f} | {g['pool-2']['per_student_s']['median']:.1f} | |"
              + (f" {g['dask-2']['per_student_s']['median']:.1f} |" if "dask-2" in g else ""), "",
              "## Whole commands", "",
              "| run | command | threads per kernel | wall s | wall s per student |",
              "| --- | --- | ---: | ---: | ---: |"]
    for k, v in g.items():
        lines.append(f"| {k} | `{v['command']}` | {'/'.join(map(str, v['threads_per_kernel']))} | {v['wall_s']:.1f} | "
                     f"{v['wall_s'] / r['students']:.1f} |")
    failed = [f"{k}: {f}" for k, v in g.items() for f in v["failed"]]
    if failed:
        lines += ["", "**Not graded (their seconds stop at the failure; the verdicts below are not valid):**", ""]
        lines += [f"- {f}" for f in failed]
    lines += ["", "## Verdicts (issue 16 and 17 goals)", "",
              f"- Two workers grade the batch **{d['speedup_2_workers']:.2f}x** faster than one (goal: at least 1.8x).",
              f"- Beside another kernel, the worst notebook (median over the batch) takes "
              f"**{max(d['beside_over_alone'].values()):.2f}x** its time alone (goal: at most 1.5x).",
              f"- A student's seven notebooks, graded (1 worker, sum of the seven tasks): "
              f"**{d['student_tasks_over_cold_plain']:.2f}x** "
              f"the sum of their cold plain executions; the whole command per student (collect, gradebook, feedback, "
              f"export included): **{d['student_command_over_cold_plain']:.2f}x** (goal: at most 1.3x).",
              ]
    if "dask_over_pool_2_workers" in d:
        lines.append(f"- Dask (LocalCluster, 2 workers) takes **{d['dask_over_pool_2_workers']:.2f}x** "
                     f"the local pool's "
                     f"wall time with 2 workers (goal: at most 1.1x).")
    s, pr = r["serial_per_submission_s"], r["projection"]
    lines += ["", f"## Projection (not a measurement): {CLASS} students x {NOTEBOOKS} notebooks", "",
              f"From the costs measured above: t_nb = the median seconds of each notebook graded beside another kernel "
              f"(one core per kernel), {pr['per_student_s']:.1f} s per student; the instructor's process spends "
              f"{s['record_s']:.3f} s per submission recording into the gradebook (while workers grade), then "
              f"{s['feedback_s']:.3f} s (feedback) + {s['export_s']:.3f} s (export); the command's fixed cost "
              f"{d['fixed_s']:.0f} s. A worker is one kernel at a time on one core of a machine like this one.", "",
              "wall(W) = fixed + max(N x sum t_nb / W + max t_nb, 7N x t_record) + 7N x (t_feedback + t_export)", "",
              "| workers | grading tasks | recording (concurrent) | projected wall |", "| ---: | ---: | ---: | ---: |"]
    for w, row in pr["rows"].items():
        lines.append(f"| {w} | {row['tasks_s'] / 3600:.2f} h | {row['recording_s'] / 3600:.2f} h "
                     f"| **{row['wall_s'] / 3600:.2f} h** |")
    lines += ["", f"Beyond about {pr['recording_saturates_at_workers']:.0f} workers the gradebook recording in one "
              "process, not the workers, sets the pace. The projection assumes the workers' filesystem and the "
              "scheduler add nothing; Dask's measured overhead is the Dask/pool ratio above."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
