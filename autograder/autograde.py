"""Autograde every collected submission, N at a time, then record the scores with nbgrader.

Phase 1 runs in worker processes: prepare the submission (autograder.submission), execute it
in its own jailed kernel (autograder.runner), keep the executed notebook (hidden tests
included) in the workspace's autograded/ folder, which only the grader (and the group of a hub's
course folder: its instructors) can read.
Phase 2 runs in this process, one submission after another, because nbgrader's gradebook is
one SQLite file: nbgrader's own SaveAutoGrades records the auto scores. It never touches manual
scores, so re-running is idempotent and keeps what instructors entered. Then each submission's
time and late penalty (autograder.late).
"""

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import SaveAutoGrades

from . import late, nbg, runner, sandbox, submission


def submitted(ws):
    """(student, assignment, path) for every notebook in ws/submitted/<student>/<assignment>/."""
    base = Path(ws) / "submitted"
    if not base.exists():
        return []
    return [(p.parent.parent.name, p.parent.name, p)
            for p in sorted(base.glob("*/*/*.ipynb")) if p.stem == p.parent.name]


def _grade_one(job):
    student, assignment, path, ws, limits, isolate = job
    record = {"student_id": student, "assignment": assignment, "isolated": isolate}
    prepared = submission.prepare(path, assignment)
    if prepared.notebook is None:
        return {**record, "status": "failed", "reason": prepared.problem, "flags": [], "tests": []}
    try:
        result, nb = runner.run(prepared, Path(ws) / "run" / f"{student}--{assignment}", limits, isolate)
    except Exception as e:  # the grader itself must never take the batch down
        return {**record, "status": "failed", "reason": f"grader error: {type(e).__name__}: {e}"[:300],
                "flags": prepared.flags, "tests": []}
    out = Path(ws) / "autograded" / student / assignment / f"{assignment}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    os.chmod(out, 0o640)   # the grader and the workspace's group (a hub's instructors), never students
    return {**record, **asdict(result), "executed": str(out)}


def autograde(ws, workers=1, limits=None, isolate=None, students=None):
    """Grade everything in ws/submitted; returns the list of result records."""
    ws = Path(ws).resolve()
    if isolate is None:
        isolate, why = sandbox.available()
        if not isolate:
            print(f"WARNING: submissions run WITHOUT isolation: {why}")
    limits = limits or sandbox.Limits()
    jobs = [(s, a, p, ws, limits, isolate) for s, a, p in submitted(ws) if students is None or s in students]
    if workers <= 1:
        records = [_grade_one(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            records = list(pool.map(_grade_one, jobs))
    api = nbg.api(ws)
    for r in records:
        if r["status"] == "graded":
            _save(api.coursedir.db_url, r)
    late.assess(ws, records)
    results = ws / "results.json"
    known = json.loads(results.read_text()) if results.exists() else {}
    known.update({f"{r['student_id']}/{r['assignment']}": r for r in records})
    results.write_text(json.dumps(known, indent=1))
    return records


def _save(db_url, r):
    student, assignment = r["student_id"], r["assignment"]
    with Gradebook(db_url) as gb:
        gb.update_or_create_student(student)
        try:
            gb.find_submission(assignment, student)
        except MissingEntry:
            gb.add_submission(assignment, student)
    nb = nbformat.read(r["executed"], as_version=4)
    resources = {"nbgrader": {"notebook": assignment, "assignment": assignment,
                              "student": student, "db_url": db_url}}
    SaveAutoGrades().preprocess(nb, resources)


def main(args):
    records = autograde(args.workspace, workers=args.workers)
    for r in records:
        print(f"{r['student_id']:<16} {r['assignment']:<20} {r['status']:<8} {r.get('reason', '')}")
