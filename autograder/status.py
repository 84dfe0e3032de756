"""Where grading stands: per assignment, how many submissions are graded, failed, flagged or
waiting for manual grading."""

from collections import Counter

from . import export


def main(args):
    counts = {}
    for r in export.rows(args.workspace):
        c = counts.setdefault(r["assignment"], Counter())
        c[r["status"]] += 1
        c["flagged"] += bool(r["flags"])
    if not counts:
        print("nothing graded yet in", args.workspace)
    for assignment, c in sorted(counts.items()):
        print(f"{assignment:<20} graded {c['graded']:>3}  needs manual grading {c['needs manual grading']:>3}  "
              f"failed {c['failed']:>3}  flagged {c['flagged']:>3}")
