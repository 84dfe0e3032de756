"""Scores and status for every graded or failed submission, as CSV.

status: "graded", "needs manual grading" (written answers wait for an instructor) or
"failed" (with the reason: not a notebook, kernel died, time or memory limit, ...).
`flags` lists tamper signals with their evidence, for an instructor to review.
Deadlines (autograder.grading.late): `submitted_at` (UTC, from the exchange), `due`, `seconds_late` and
`late_penalty`; `score` is the raw score minus the penalty, never below 0.
"""

import csv
from pathlib import Path

from nbgrader.api import Gradebook

from autograder import nbg
from autograder.grading import gradebook
from autograder.grading import results as grading_results

COLUMNS = ["student_id", "assignment", "status", "reason", "flags", "autograded_score", "autograded_max",
           "needs_manual_grade", "score", "max_score", "isolated", "submitted_at", "due", "seconds_late",
           "late_penalty"]


def rows(ws):
    ws = Path(ws)
    results = grading_results.load(ws)
    db_url = nbg.config(ws).CourseDirectory.db_url
    out = []
    with Gradebook(db_url) as gb:
        for key in sorted(results):
            r = results[key]
            row = {"student_id": r.student_id, "assignment": r.assignment, "status": r.status,
                   "reason": r.reason, "flags": r.flags, "autograded_score": 0.0,
                   "autograded_max": 0.0, "needs_manual_grade": False, "score": 0.0, "max_score": 0.0,
                   "isolated": r.isolated, "submitted_at": "", "due": "", "seconds_late": 0.0,
                   "late_penalty": 0.0, "cells": {}}
            sub = gradebook.find(gb, r.assignment, r.student_id)
            if sub is not None and r.status != "failed":
                row["late_penalty"] = sub.late_submission_penalty or 0.0
                row["score"], row["max_score"] = max(0.0, sub.score - row["late_penalty"]), sub.max_score
                row["submitted_at"] = sub.timestamp.isoformat() if sub.timestamp else ""
                row["due"] = sub.duedate.isoformat() if sub.duedate else ""
                row["seconds_late"] = sub.total_seconds_late
                for nb in sub.notebooks:
                    for g in nb.grades:
                        row["cells"][g.name] = (g.score, g.max_score)
                        if g.cell_type == "code":
                            row["autograded_score"] += g.score
                            row["autograded_max"] += g.max_score
                row["needs_manual_grade"] = gradebook.needs_manual(sub)
                if row["needs_manual_grade"]:
                    row["status"] = "needs manual grading"
            out.append(row)
    return out


def write(rows_, out_csv):
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows_:
            w.writerow([("; ".join(r[c]) if c == "flags" else r[c]) for c in COLUMNS])
    with out.with_suffix(".cells.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "assignment", "grade_id", "score", "max_score"])
        for r in rows_:
            for gid, (s, m) in r["cells"].items():
                w.writerow([r["student_id"], r["assignment"], gid, s, m])
    return out
