"""Deadlines: a due date per assignment (in the gradebook: `release ID --exchange --due DATE` or
nbgrader's formgrader) and a late-submission policy, applied by nbgrader's own
AssignLatePenalties with the plugin below.

The policy is nbgrader configuration, in the course folder's nbgrader_config.py (written by
`hub --late-policy`) or any nbgrader config the workspace loads:

    c.LatePolicy.penalty_method = "per_day"   # none | zero | per_day
    c.LatePolicy.percent_per_day = 10         # per_day: this share of the score per day started
    c.LatePolicy.grace_minutes = 5            # this late is still on time

A submission's time is the one nbgrader's `submit` wrote into it (timestamp.txt, kept by
`collect`); submissions from a folder or a zip have none and are never late. The export shows
the submission time, the seconds late and the penalty; the score is the raw score minus the
penalty, never below 0 (as nbgrader's own export computes it).
"""

import math
from pathlib import Path

from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.utils import parse_utc
from traitlets import Enum, Float

from autograder.errors import CourseError


class LatePolicy(LateSubmissionPlugin):
    """nbgrader's late-submission plugin, with a penalty per day started and a grace period."""

    penalty_method = Enum(("none", "zero", "per_day"), default_value="none",
                          help="none: no penalty; zero: score 0; per_day: percent_per_day of the score "
                               "per day (or part of a day) late").tag(config=True)
    percent_per_day = Float(10.0, help="per_day: share of the score taken per day started").tag(config=True)
    grace_minutes = Float(0.0, help="a submission this late counts as on time").tag(config=True)

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        if total_seconds_late <= self.grace_minutes * 60 or self.penalty_method == "none":
            return None
        if self.penalty_method == "zero":
            return score
        days = math.ceil(total_seconds_late / 86400)
        return score * min(1.0, days * self.percent_per_day / 100)


def parse_policy(text):
    """`none`, `zero` or `per-day:PERCENT` (command line) -> nbgrader config lines."""
    method, _, pct = text.partition(":")
    method = method.replace("-", "_")
    if method not in ("none", "zero", "per_day") or (method == "per_day") != bool(pct):
        raise CourseError(f"late policy {text!r}: use none, zero or per-day:PERCENT (e.g. per-day:10)")
    lines = [f"c.LatePolicy.penalty_method = {method!r}"]
    if pct:
        try:
            value = float(pct)
        except ValueError:
            raise CourseError(f"late policy {text!r}: {pct!r} is not a number") from None
        if not 0 < value <= 100:
            raise CourseError(f"late policy {text!r}: the percentage must be in (0, 100]")
        lines.append(f"c.LatePolicy.percent_per_day = {value!r}")
    return lines


def submitted_at(ws, student, assignment):
    """The time nbgrader's submit recorded (naive UTC), or None (not from the exchange)."""
    path = Path(ws) / "submitted" / student / assignment / "timestamp.txt"
    if not path.exists():
        return None
    try:
        return parse_utc(path.read_text().strip())
    except ValueError:
        return None
