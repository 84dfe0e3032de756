"""One command for a batch: collect a folder of submissions, autograde them (N workers), write
feedback and export the CSV. Each step is also a verb of its own (collect, autograde,
feedback, export); this runs them in order in one workspace.

A submission that cannot be graded is never a silent zero: its row says `failed` and why, and
the other submissions of the batch are still graded.
"""

import json
from pathlib import Path
from types import SimpleNamespace

from . import autograde, collect, export, feedback, nbg, paths


def prepare_workspace(ws):
    """Record every present assignment in the workspace's gradebook (nbgrader generate_assignment)."""
    api = nbg.api(ws)
    for assignment in paths.present_assignments():
        result = api.generate_assignment(assignment, force=True, create=True)
        if not result["success"]:
            raise SystemExit(f"nbgrader could not prepare {assignment}:\n{result.get('log')}")
    return api


def grade(submissions, out_csv, workspace=None, workers=1, isolate=None, limits=None):
    ws = Path(workspace or paths.BUILD / "grading").resolve()
    prepare_workspace(ws)
    count, problems = collect.collect(submissions, ws)
    if not count and not problems:
        raise SystemExit(f"no submissions found under {submissions}")
    autograde.autograde(ws, workers=workers, isolate=isolate, limits=limits)
    if problems:
        results = ws / "results.json"
        known = json.loads(results.read_text()) if results.exists() else {}
        for student, assignment, why in problems:
            known[f"{student}/{assignment}"] = {"student_id": student, "assignment": assignment,
                                                "status": "failed", "reason": why, "flags": [], "tests": []}
        results.write_text(json.dumps(known, indent=1))
    feedback.generate(ws)
    rows = export.rows(ws)
    export.write(rows, out_csv)
    return [SimpleNamespace(**r) for r in rows]


def main(args):
    rows = grade(args.submissions, args.out, args.workspace, workers=args.workers)
    for r in rows:
        extra = f"  ({r.reason})" if r.reason else ""
        flags = f"  [{len(r.flags)} flag(s)]" if r.flags else ""
        print(f"{r.student_id:<16} {r.assignment:<20} {r.status:<22} "
              f"auto {r.autograded_score:g}/{r.autograded_max:g}{extra}{flags}")
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.cells.csv')}; feedback in {args.workspace or 'build/grading'}/feedback/")
