"""Autograde a folder of submissions and export one CSV row per submission.

Layout read: <submissions>/<student_id>/<assignment_id>/<assignment_id>.ipynb (nbgrader's
"submitted" layout) or <submissions>/<student_id>/<assignment_id>.ipynb.

A submission that cannot be graded is never a silent zero: its row says `failed` and why,
and the other submissions of the batch are still graded. Scores come from nbgrader's gradebook.
"""

import csv
import datetime
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from . import nbg, paths

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
COLUMNS = ["student_id", "assignment", "status", "reason", "autograded_score", "autograded_max",
           "needs_manual_grade", "score", "max_score"]


@dataclass
class Row:
    student_id: str
    assignment: str
    status: str = "graded"          # graded | failed | needs manual grading
    reason: str = ""
    autograded_score: float = 0.0
    autograded_max: float = 0.0
    needs_manual_grade: bool = False
    score: float = 0.0
    max_score: float = 0.0
    cells: dict = field(default_factory=dict)   # grade_id -> (score, max_score)


def discover(submissions):
    """Yield (student_id, assignment, notebook path) for every submission found."""
    known = set(paths.present_assignments())
    for student_dir in sorted(p for p in Path(submissions).iterdir() if p.is_dir()):
        for nb in sorted(student_dir.rglob("*.ipynb")):
            if ".ipynb_checkpoints" in nb.parts or nb.stem not in known:
                continue
            yield student_dir.name, nb.stem, nb


def problem_with(student, path):
    """Why this submission cannot be graded, or None."""
    if not STUDENT_ID.match(student):
        return f"student id {student!r} must be letters, digits, '.', '_' or '-'"
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # NotJSONError, ValidationError, UnicodeDecodeError, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"not a valid notebook file ({type(e).__name__}: {first[:200]})"
    return None


def grade(submissions, out_csv, workspace=None):
    ws = Path(workspace or paths.BUILD / "grading").resolve()
    api = nbg.api(ws)
    found = list(discover(submissions))
    if not found:
        raise SystemExit(f"no submissions found under {submissions} "
                         f"(expected <student>/<assignment>/<assignment>.ipynb)")
    for assignment in sorted({a for _, a, _ in found}):
        result = api.generate_assignment(assignment, force=True, create=True)
        if not result["success"]:
            raise SystemExit(f"nbgrader could not prepare {assignment}:\n{result.get('log')}")
    rows = []
    for student, assignment, path in found:
        row = Row(student, assignment)
        rows.append(row)
        problem = problem_with(student, path)
        if problem:
            row.status, row.reason = "failed", problem
            continue
        dest = ws / "submitted" / student / assignment
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        shutil.copy(path, dest / f"{assignment}.ipynb")
        (dest / "timestamp.txt").write_text(datetime.datetime.now(datetime.timezone.utc).isoformat())
        result = api.autograde(assignment, student, force=True, create=True)
        if not result["success"]:
            row.status, row.reason = "failed", _last_error(result)
            continue
        _fill_scores(row, api.coursedir.db_url)
    write_csv(rows, out_csv)
    return rows


def _last_error(result):
    lines = [l for l in (result.get("log") or "").splitlines() if "ERROR" in l or "Error" in l]
    return ("autograde failed: " + (lines[-1] if lines else (result.get("error") or "unknown error")))[:300]


def _fill_scores(row, db_url):
    with Gradebook(db_url) as gb:
        sub = gb.find_submission(row.assignment, row.student_id)
        row.score, row.max_score = sub.score, sub.max_score
        row.needs_manual_grade = bool(sub.needs_manual_grade)
        for nb in sub.notebooks:
            for g in nb.grades:
                row.cells[g.name] = (g.score, g.max_score)
                if g.cell_type == "code" and not g.needs_manual_grade:
                    row.autograded_score += g.score
                    row.autograded_max += g.max_score
    if row.needs_manual_grade:
        row.status = "needs manual grading"


def write_csv(rows, out_csv):
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([getattr(r, c) for c in COLUMNS])
    with out.with_suffix(".cells.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "assignment", "grade_id", "score", "max_score"])
        for r in rows:
            for gid, (s, m) in r.cells.items():
                w.writerow([r.student_id, r.assignment, gid, s, m])


def main(args):
    rows = grade(args.submissions, args.out, args.workspace)
    width = max(len(r.student_id) for r in rows)
    for r in rows:
        extra = f"  ({r.reason})" if r.reason else ""
        print(f"{r.student_id:<{width}}  {r.assignment}  {r.status:<20} "
              f"auto {r.autograded_score:g}/{r.autograded_max:g}{extra}")
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.cells.csv')}")
