"""Grading on submit, per assignment: whether the hub's grading service grades it as it arrives,
what its feedback shows before the deadline, and how often a student may be graded.

The instructor sets it with `python -m autograder on-submit ID [--budget 3/60m] [--before-deadline
counts|full] [--off]`; it is kept in `<workspace>/on_submit.json`, which the grading service
(autograder.classroom.service) reads at every pass, so a change needs no restart.

The budget is a token bucket per student and assignment: `3/60m` holds at most three gradings
and gives one back every 60/3 = 20 minutes; a student starts with a full bucket. A submission
that finds the bucket empty is kept (it counts as the latest, nbgrader's rule) and graded when a
token is back; its feedback page says when. After the deadline nothing is rate-limited.
"""

import datetime
import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder.errors import CourseError
from autograder.reports import feedback

FILE = "on_submit.json"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Budget:
    gradings: int          # the bucket holds at most this many
    window_s: float        # and refills completely in this time: one back every window_s / gradings

    @classmethod
    def parse(cls, text):
        """"3/60m" (three per 60 minutes), "2/30s", "5/1h", "10/1d"; "unlimited" or "off" -> None."""
        if text is None or text.strip().lower() in ("unlimited", "off", "none", ""):
            return None
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
        if not m or int(m.group(1)) < 1 or float(m.group(2)) <= 0:
            raise CourseError(f"--budget {text!r}: expected N/TIME, e.g. 3/60m (three gradings, one more every "
                              f"20 minutes), 2/30s, 5/1h, or unlimited")
        return cls(int(m.group(1)), float(m.group(2)) * UNITS[m.group(3)])

    @property
    def refill_s(self):
        return self.window_s / self.gradings

    def __str__(self):
        return f"{self.gradings} per {_duration(self.window_s)}"


def _duration(seconds):
    for unit, name in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= unit and seconds % unit == 0:
            n = int(seconds // unit)
            return f"{n} {name}{'s' if n != 1 else ''}"
    return f"{seconds:g} seconds"


@dataclass
class Rule:
    """One assignment's grading on submit."""
    assignment: str
    enabled: bool = True
    before_deadline: str = feedback.COUNTS      # what feedback shows before the deadline: counts | full
    budget: str = "unlimited"                   # Budget.parse's text

    def __post_init__(self):
        if self.before_deadline not in (feedback.COUNTS, feedback.FULL):
            raise CourseError(f"--before-deadline {self.before_deadline!r}: use counts or full")
        Budget.parse(self.budget)

    @property
    def bucket(self):
        return Budget.parse(self.budget)

    def mode(self, due, now):
        """The feedback page's kind for a grading at `now` (naive UTC), given the due date."""
        if self.before_deadline == feedback.FULL or (due is not None and now >= due):
            return feedback.FULL
        return feedback.COUNTS

    def sentence(self, due, now):
        """The rule, as the top of every feedback page states it."""
        when = f"the deadline ({due:%Y-%m-%d %H:%M} UTC)" if due else "the deadline"
        if self.mode(due, now) == feedback.FULL:
            after = due is not None and now >= due
            return ("Graded on submit" + (f", after {when}" if after else "") +
                    ": full feedback, every test with its message, hidden tests included (their code is never "
                    "shown).")
        return (f"Graded on submit. Until {when} this page shows every visible test with its message and "
                f"the hidden checks of each exercise only as counts; after it, the full feedback.")


def path(ws):
    return Path(ws) / FILE


def load(ws):
    """{assignment: Rule} of every assignment set to grade on submit (enabled or not)."""
    try:
        data = json.loads(path(ws).read_text())
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise CourseError(f"{path(ws)} is not valid JSON ({e}): set it again with python -m autograder on-submit") \
            from None
    return {a: Rule(assignment=a, **{k: v for k, v in r.items() if k != "assignment"}) for a, r in data.items()}


def save(ws, rules):
    out = path(ws)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".on_submit.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump({a: asdict(r) for a, r in sorted(rules.items())}, f, indent=1)
    os.chmod(tmp, 0o660)
    os.replace(tmp, out)
    return out


def set_rule(ws, assignment, *, enabled=True, before_deadline=None, budget=None):
    """Turn grading on submit on (or off) for one assignment; returns its Rule."""
    rules = load(ws)
    old = rules.get(assignment, Rule(assignment))
    rule = Rule(assignment, enabled=enabled, before_deadline=before_deadline or old.before_deadline,
                budget=budget if budget is not None else old.budget)
    rules[assignment] = rule
    save(ws, rules)
    return rule


# ---------------------------------------------------------------------------------------------
# the token bucket of one student and assignment
# ---------------------------------------------------------------------------------------------
@dataclass
class Bucket:
    tokens: float = math.inf     # inf: full (a student starts with a full bucket)
    updated: float = 0.0         # epoch seconds of the last change

    def level(self, budget, now):
        """Tokens in the bucket at `now` (fractions count towards the next one)."""
        if budget is None:
            return math.inf
        if self.tokens == math.inf:
            return float(budget.gradings)
        return min(float(budget.gradings), self.tokens + max(0.0, now - self.updated) / budget.refill_s)

    def take(self, budget, now):
        """Use one grading if there is one; True if it was taken."""
        if budget is None:
            return True
        level = self.level(budget, now)
        if level < 1 - 1e-9:
            return False
        self.tokens, self.updated = level - 1, now
        return True

    def next_at(self, budget, now):
        """Epoch seconds when the next grading is available (now if one is)."""
        level = self.level(budget, now)
        return now if level >= 1 - 1e-9 else now + (1 - level) * budget.refill_s

    def describe(self, budget, now, after_deadline=False):
        """The line a feedback page shows about the student's gradings."""
        if after_deadline:
            return "After the deadline gradings are not limited."
        if budget is None:
            return "Gradings are not limited for this assignment."
        left = int(self.level(budget, now) + 1e-9)
        line = f"Gradings left: {left} of {budget.gradings} (one more every {_duration(budget.refill_s)})"
        if left < budget.gradings:
            line += f"; the next comes back at {clock(self.next_at_full_step(budget, now))}"
        return line + "."

    def next_at_full_step(self, budget, now):
        """When the bucket gains its next whole grading."""
        level = self.level(budget, now)
        return now + (math.floor(level + 1e-9) + 1 - level) * budget.refill_s

    def to_dict(self):
        return {"tokens": None if self.tokens == math.inf else self.tokens, "updated": self.updated}

    @classmethod
    def from_dict(cls, d):
        tokens = d.get("tokens")
        return cls(math.inf if tokens is None else float(tokens), float(d.get("updated", 0.0)))


def clock(epoch):
    """A time as a feedback page shows it: HH:MM:SS UTC."""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%H:%M:%S UTC")
