"""The gradebook as a CSV that Canvas imports (Grades › Import): one row per student of the
gradebook (the hub puts the roster there), one column per assignment.

    Student, ID, SIS User ID, SIS Login ID, Section, <assignment> ..., Notes
    Points Possible, , , , , <max> ..., (the row Canvas reads for points)

Canvas matches a row to a student by `ID` (its internal user id), else `SIS User ID`, else
`SIS Login ID`; the roster's `lms_id` goes in `SIS User ID` (the others stay empty). Each assignment column is named by
the assignment id: create assignments with these names in Canvas first (or rename the headers to
Canvas's `Name (id)` form); Canvas creates an assignment for a header it does not know. A cell
is the score after the late penalty, empty when nothing was submitted (Canvas leaves the grade
alone), 0 when grading failed. `Notes` says why a score is what it is (failed with the reason,
flagged for review, late with the penalty, waiting for manual grading); Canvas imports it into
its Notes column when that column is shown in the gradebook (View › Notes), else delete it.
"""

import csv
from pathlib import Path

from nbgrader.api import Gradebook

from autograder import nbg
from autograder.reports import export

HEAD = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def _note(row):
    a = row["assignment"]
    parts = []
    if row["status"] == "failed":
        parts.append(f"{a}: grading failed: {row['reason']}")
    elif row["status"] == "needs manual grading":
        parts.append(f"{a}: written answers wait for manual grading")
    if row["flags"]:
        parts.append(f"{a}: flagged for review: " + "; ".join(row["flags"]))
    if row["seconds_late"]:
        parts.append(f"{a}: {row['seconds_late'] / 3600:.1f} h late, penalty {row['late_penalty']:g} points")
    return parts


def table(ws):
    """(header, points row, student rows) of the Canvas CSV."""
    rows = export.rows(ws)
    cfg = nbg.config(ws)
    with Gradebook(cfg.CourseDirectory.db_url) as gb:
        assignments = [a.name for a in gb.assignments]
        points = {a.name: a.max_score for a in gb.assignments}
        students = [(s.id, " ".join(x for x in (s.first_name, s.last_name) if x) or s.id, s.lms_user_id or "")
                    for s in gb.students]
    by_student = {}
    for r in rows:
        by_student.setdefault(r["student_id"], {})[r["assignment"]] = r
    known = {s for s, _, _ in students}
    students += [(s, s, "") for s in sorted(by_student) if s not in known]
    header = HEAD + assignments + ["Notes"]
    points_row = ["Points Possible", "", "", "", ""] + [f"{points[a]:g}" for a in assignments] + [""]
    out = []
    for sid, name, lms in sorted(students, key=lambda s: (s[1].split()[-1].lower() if s[1] else "", s[0])):
        cells, notes = [], []
        for a in assignments:
            r = by_student.get(sid, {}).get(a)
            if r is None:
                cells.append("")
                continue
            cells.append(f"{r['score']:g}")
            notes += _note(r)
        out.append([name, "", lms, "", ""] + cells + [" | ".join(notes)])
    return header, points_row, out


def write(ws, out_csv):
    header, points, rows = table(ws)
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerow(points)
        w.writerows(rows)
    return out
