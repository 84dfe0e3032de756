"""Benchmark of grading on submit (not a test): seconds from a student's Submit to their feedback
being available for Fetch Feedback, with the grading service the hub runs.

    .venv/bin/python bench/hub.py                  # idle: 5 one after another; rush: 30 at once; 2 workers
    make bench-hub

The service is `python -m autograder serve` (what JupyterHub starts, autograder/classroom/service.py)
on a scratch workspace with nbgrader's exchange, as root (the jail). Students press Submit
through nbgrader's own ExchangeSubmit, in this process (tests/exchange_helpers.py: StudentSide); the
hub adds nothing on this path (the service reads the exchange's inbound folder directly). The
seconds are measured outside the service: from the submission's own timestamp (nbgrader's
timestamp.txt) to the modification time of its page in the exchange's feedback folder (named by
nbgrader's hash of the submission's secret), for 01_self_attention's solution.

1. Idle: `--idle N` submissions one after another, each waiting for its feedback.
2. Rush: `--rush M` students submit at once (one each, distinct files, so every one is graded).

Targets (issue 24), on a 2-core machine: idle median <= 20 s; in the rush every submission
graded within ceil(M / workers) x (one grading: the idle median of the grader's own seconds per
notebook) + 30 s. Writes bench/results/hub-<machine>.json and .md with the machine's
description and the load average around each phase (other jobs inflate every figure).
"""

import argparse
import datetime
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import exchange_helpers as xh  # noqa: E402
import nbtools  # noqa: E402
from archlab.device import describe_machine, machine_slug, recorded_command  # noqa: E402
from autograder import contract, nbg  # noqa: E402
from autograder.grading import results, sandbox  # noqa: E402

A1 = "01_self_attention"


def _notebook(note):
    answers = nbtools.solution_answers(A1)
    first = next(iter(answers))
    return nbtools.submission(nbtools.release_nb(A1), {**answers, first: answers[first] + f"\n# {note}"})


def _page(ws, folder):
    from nbgrader.utils import notebook_hash
    cfg = nbg.config(ws)
    course = Path(cfg.Exchange.root) / cfg.CourseDirectory.course_id
    secret = (course / "inbound" / folder / "submission_secret.txt").read_text()
    return course / "feedback" / f"{notebook_hash(secret=secret, notebook_id=A1)}.html"


def _latency(ws, folder, timeout):
    from nbgrader.utils import parse_utc
    cfg = nbg.config(ws)
    entry = Path(cfg.Exchange.root) / cfg.CourseDirectory.course_id / "inbound" / folder
    page, deadline = _page(ws, folder), time.monotonic() + timeout
    while not page.exists() or "will be graded at" in page.read_text():
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)
    submitted = parse_utc((entry / "timestamp.txt").read_text().strip()).replace(tzinfo=datetime.UTC)
    return page.stat().st_mtime - submitted.timestamp()


def _stats(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "median": statistics.median(xs), "p95": xs[min(len(xs) - 1, math.ceil(0.95 * len(xs)) - 1)],
            "max": xs[-1], "min": xs[0]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--idle", type=int, default=5)
    p.add_argument("--rush", type=int, default=30)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--name", default=None, help="result file name (default hub-<machine>)")
    a = p.parse_args(argv)
    if os.geteuid() != 0 or not sandbox.available()[0]:
        sys.exit("bench/hub.py grades in jailed kernels: run it as root (sandbox.available() says no)")
    contract.apply_kernel_env()
    tmp = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    ws = tmp / "ws"
    ws.mkdir()
    run = lambda *args: subprocess.run([sys.executable, "-m", "autograder", *args, "--workspace", str(ws)],  # noqa: E731
                                       cwd=ROOT, check=True, capture_output=True, text=True)
    run("publish", A1, "--due", (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).isoformat())
    run("on-submit", A1)
    root, course = nbg.config(ws).Exchange.root, nbg.config(ws).CourseDirectory.course_id
    log = open(tmp / "service.log", "w")
    svc = subprocess.Popen([sys.executable, "-m", "autograder", "serve", "--workspace", str(ws), "--workers",
                            str(a.workers), "--poll", "1"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    out = {"machine": describe_machine(), "command": recorded_command(root=ROOT), "workers": a.workers,
           "assignment": A1, "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    try:
        # idle: one after another
        out["load_before_idle"] = os.getloadavg()
        idle, seconds = [], []
        for i in range(a.idle):
            s = xh.StudentSide(root, f"idle{i}", tmp / "homes" / f"idle{i}", course)
            folder = s.submit(A1, _notebook(f"idle {i}"))
            idle.append(_latency(ws, folder, 600))
            r = results.load_one(ws, f"idle{i}", A1)
            seconds.append(r.seconds if r else None)
            print(f"idle {i}: feedback {idle[-1]:.1f} s after Submit (grading {seconds[-1]:.1f} s)", flush=True)
        out["idle"] = {"latency_s": idle, "grading_s": seconds, **{f"latency_{k}": v for k, v in _stats(idle).items()}}
        one = statistics.median(x for x in seconds if x is not None)
        # the rush: every student at once
        out["load_before_rush"] = os.getloadavg()
        folders = {}
        t0 = time.monotonic()
        for i in range(a.rush):
            s = xh.StudentSide(root, f"rush{i:02d}", tmp / "homes" / f"rush{i}", course)
            folders[i] = s.submit(A1, _notebook(f"rush {i}"))
        made = time.monotonic() - t0
        rush = [_latency(ws, folders[i], 1800) for i in range(a.rush)]
        bound = math.ceil(a.rush / a.workers) * one + 30
        out["rush"] = {"students": a.rush, "submitted_in_s": made, "latency_s": rush, "bound_s": bound,
                       **{f"latency_{k}": v for k, v in _stats(rush).items()}}
        out["load_after"] = os.getloadavg()
        ok_idle = out["idle"]["latency_median"] <= 20
        ok_rush = all(x is not None and x <= bound for x in rush)
        out["verdict"] = {
            "idle median <= 20 s": "holds here" if ok_idle else "does not hold here",
            f"rush: every submission within ceil({a.rush}/{a.workers}) x {one:.1f} s + 30 s = {bound:.0f} s":
                "holds here" if ok_rush else "does not hold here"}
    finally:
        svc.send_signal(signal.SIGTERM)
        try:
            svc.wait(60)
        except subprocess.TimeoutExpired:
            svc.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    name = a.name or f"hub-{machine_slug()}"
    res = ROOT / "bench" / "results"
    (res / f"{name}.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    (res / f"{name}.md").write_text(_markdown(out))
    print((res / f"{name}.md").read_text())


def _markdown(out):
    m, i, r = out["machine"], out["idle"], out["rush"]
    load = lambda x: ", ".join(f"{v:.2f}" for v in x)  # noqa: E731
    lines = [f"# Graded on submit: seconds from Submit to feedback ({machine_slug()})", "",
             f"Machine: {m.get('cpu_model')}, {m.get('logical_cores')} logical cores; torch {m.get('torch')}.",
             f"Command: `{out['command']}`; {out['workers']} grading workers; {out['assignment']}, the solution.",
             f"Started {out['started']}. Load average (1, 5, 15 min) before idle: {load(out['load_before_idle'])}; "
             f"before the rush: {load(out['load_before_rush'])}; after: {load(out['load_after'])}.", "",
             "| phase | submissions | median s | p95 s | max s |", "| --- | ---: | ---: | ---: | ---: |",
             f"| idle, one after another | {i['latency_n']} | {i['latency_median']:.1f} | {i['latency_p95']:.1f} | "
             f"{i['latency_max']:.1f} |",
             f"| rush, all at once ({r['submitted_in_s']:.1f} s to submit) | {r['latency_n']} | "
             f"{r['latency_median']:.1f} | {r['latency_p95']:.1f} | {r['latency_max']:.1f} |", "",
             f"One grading (the grader's own seconds per notebook, idle median): "
             f"{statistics.median(x for x in i['grading_s'] if x is not None):.1f} s.", "", "Verdicts:", ""]
    lines += [f"- {k}: **{v}**" for k, v in out["verdict"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
