"""Where grading stands: per assignment, how many submissions are graded, failed, flagged or
waiting for manual grading."""

from collections import Counter

from autograder.reports import export


def counts(ws):
    """{assignment: Counter(graded=, failed=, "needs manual grading"=, flagged=)}."""
    out = {}
    for r in export.rows(ws):
        c = out.setdefault(r["assignment"], Counter())
        c[r["status"]] += 1
        c["flagged"] += bool(r["flags"])
    return out
