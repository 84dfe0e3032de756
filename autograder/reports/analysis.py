"""What the class got wrong, as numbers: the statistics of the instructor's report (report.py).

Read at build time from the grader's records (each test's pass and named mistake,
autograder.grading.results), its history (every attempt, WS/history.jsonl) and nbgrader's
gradebook (scores with manual grades and late penalties, through reports/export.rows), so a
manual score entered later changes the next build.

Who is counted: a submission that was graded and carries no tamper flag. Failed submissions
(with their reasons) and flagged ones (with their flags) are listed apart, never as zeros.

Glossary
--------
raw score
    A submission's points before any late penalty: every graded cell, automatic and manual.
pass rate
    The share of counted submissions whose test cell passed (all or nothing, as nbgrader scores).
point-biserial r
    Pearson's correlation between passing one test (1/0) and the rest of the raw score (the raw
    score minus that test's points). Positive: the students who pass it do better elsewhere.
    Undefined when everyone passes, everyone fails, or the rest of the score does not vary.
upper-lower index
    The pass rate among the top 27 % of raw scores minus that among the bottom 27 % (Kelley's
    groups); ties at the cut are broken by student id.
named mistake
    ``<assignment>/<exercise>/<slug>``, recorded by the grader for a failed test
    (autograder.contract.recognise); a failure no hint explains is ``unrecognised``.
"""

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field

from autograder import contract
from autograder.grading import results as grading_results
from autograder.reports import export

EASY, HARD = 0.95, 0.05          # a test is flagged when nearly everyone passes / fails it
KELLEY = 0.27                    # the share of students in the upper and the lower group


@dataclass
class Summary:
    n: int
    mean: float | None = None
    median: float | None = None
    q1: float | None = None
    q3: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass
class TestStats:
    grade_id: str
    points: float
    n: int
    passed: int
    pass_rate: float | None
    point_biserial: float | None
    upper_lower: float | None
    flags: list = field(default_factory=list)


@dataclass
class ExerciseMistakes:
    exercise: str
    failures: int                                # counted submissions that failed its test
    counts: dict = field(default_factory=dict)   # {mistake id: students}, most frequent first
    unrecognised: int = 0                        # failures no named mistake explains
    unknown: int = 0                             # failures recorded before mistakes had ids

    @property
    def unrecognised_share(self):
        return self.unrecognised / self.failures if self.failures else None


@dataclass
class Attempts:
    per_student: dict = field(default_factory=dict)     # {student: gradings}
    first_last: dict = field(default_factory=dict)      # {mistake id: (students at first, at last attempt)}


@dataclass
class AssignmentReport:
    assignment: str
    submissions: int
    counted: list = field(default_factory=list)          # [Row] graded, unflagged
    failed: list = field(default_factory=list)           # [(student, reason)]
    flagged: list = field(default_factory=list)          # [(student, [flags])]
    summary: Summary = None
    max_score: float = 0.0
    tests: list = field(default_factory=list)            # [TestStats]
    mistakes: list = field(default_factory=list)         # [ExerciseMistakes]
    attempts: Attempts = None
    late: list = field(default_factory=list)             # [(student, seconds late, penalty)]
    manual_waiting: list = field(default_factory=list)   # students whose written answers wait
    manual_total: int = 0                                # counted submissions with written answers
    similar: dict = field(default_factory=dict)          # {exercise: [similar.Pair]} (report.py fills it)
    note: str = ""                                       # what the numbers cannot say (too few submissions)


@dataclass
class Row:
    """One counted submission."""
    student: str
    raw: float
    score: float
    tests: dict          # {test grade id: TestResult}


def _quartiles(xs):
    if len(xs) < 2:
        return None, None
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def summarise(scores):
    """n, mean, median, quartiles and range; None where n is too small to say."""
    xs = sorted(scores)
    if not xs:
        return Summary(0)
    q1, q3 = _quartiles(xs)
    return Summary(len(xs), statistics.fmean(xs), statistics.median(xs), q1, q3, xs[0], xs[-1])


def pearson(x, y):
    """Pearson's r of two equal-length sequences; None when either does not vary."""
    n = len(x)
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def point_biserial(passed, rest):
    """r between passing (bools) and the rest of the score: Pearson's r with passing as 1/0."""
    return pearson([1.0 if p else 0.0 for p in passed], list(rest))


def upper_lower(rows, grade_id):
    """Pass rate of the top 27 % by raw score minus that of the bottom 27 % (None below 2 rows)."""
    n = len(rows)
    if n < 2:
        return None
    g = max(1, round(KELLEY * n))
    ranked = sorted(rows, key=lambda r: (-r.raw, r.student))
    top, bottom = ranked[:g], ranked[-g:]

    def rate(group):
        return sum(1 for r in group if r.tests[grade_id].passed) / len(group)
    return rate(top) - rate(bottom)


def _test_stats(rows, grade_id, points):
    have = [r for r in rows if grade_id in r.tests]
    passed = [r.tests[grade_id].passed for r in have]
    n, k = len(have), sum(passed)
    rate = k / n if n else None
    r_pb = point_biserial(passed, [r.raw - (points if p else 0.0) for r, p in zip(have, passed)])
    ul = upper_lower(have, grade_id)
    flags = []
    if rate is not None and n >= 2:
        if rate >= EASY:
            flags.append("nearly everyone passes")
        elif rate <= HARD:
            flags.append("nearly everyone fails")
    if r_pb is not None and r_pb < 0:
        flags.append("negative discrimination: students who pass it score lower elsewhere")
    return TestStats(grade_id, points, n, k, rate, r_pb, ul, flags)


def _mistakes(rows, grade_id):
    failed = [r.tests[grade_id] for r in rows if grade_id in r.tests and not r.tests[grade_id].passed]
    ids = Counter(t.mistake for t in failed)
    unrecognised, unknown = ids.pop(contract.UNRECOGNISED, 0), ids.pop("", 0)
    return ExerciseMistakes(contract.exercise_of(grade_id), len(failed), dict(ids.most_common()),
                            unrecognised, unknown)


def _attempts(history, assignment, counted_students):
    mine = [h for h in history if h.get("assignment") == assignment and h.get("status") == "graded"]
    per, by_student = Counter(), {}
    seen = set()
    for h in mine:          # a submission recorded twice (a rerun) is one attempt
        key = (h["student_id"], h.get("submission_sha256") or len(seen))
        if key in seen:
            continue
        seen.add(key)
        per[h["student_id"]] += 1
        by_student.setdefault(h["student_id"], []).append(h)
    first_last = {}
    for student, hs in by_student.items():
        if student not in counted_students:
            continue
        hs = sorted(hs, key=lambda h: h.get("submitted_at") or "")
        for which, h in ((0, hs[0]), (1, hs[-1])):
            for mid in set((h.get("mistakes") or {}).values()):
                if mid and mid != contract.UNRECOGNISED:
                    pair = first_last.setdefault(mid, [0, 0])
                    pair[which] += 1
    return Attempts(dict(sorted(per.items())), {k: tuple(v) for k, v in sorted(first_last.items())})


def analyse(ws, assignments=None):
    """{assignment: AssignmentReport} for every assignment with a record (or those named)."""
    records = grading_results.load(ws)
    rows_by = {}
    for row in export.rows(ws):
        rows_by[row["student_id"], row["assignment"]] = row
    history = grading_results.load_history(ws)
    names = sorted({r.assignment for r in records.values()} | set(assignments or []))
    if assignments:
        names = [a for a in names if a in assignments]
    out = {}
    for a in names:
        mine = [r for r in records.values() if r.assignment == a]
        rep = AssignmentReport(a, len(mine))
        for r in sorted(mine, key=lambda r: r.student_id):
            ex = rows_by.get((r.student_id, a), {})
            if r.status != "graded":
                rep.failed.append((r.student_id, r.reason or r.status))
                continue
            if r.flags:
                rep.flagged.append((r.student_id, list(r.flags)))
                continue
            cells = ex.get("cells", {})
            raw = sum(s for s, _ in cells.values()) if cells else r.auto_score[0]
            rep.max_score = max(rep.max_score, sum(m for _, m in cells.values()) if cells else r.auto_score[1])
            rep.counted.append(Row(r.student_id, raw, ex.get("score", raw), {t.grade_id: t for t in r.tests}))
            if ex.get("seconds_late"):
                rep.late.append((r.student_id, ex["seconds_late"], ex.get("late_penalty", 0.0)))
            if r.needs_manual or ex.get("needs_manual_grade"):     # it had written answers to grade by hand
                rep.manual_total += 1
            if ex.get("needs_manual_grade"):
                rep.manual_waiting.append(r.student_id)
        rep.summary = summarise([row.raw for row in rep.counted])
        n = len(rep.counted)
        if n == 0:
            rep.note = "No graded submission is counted yet: there is nothing to compute."
        elif n == 1:
            rep.note = ("One graded submission is counted: pass rates are that student's results; spread and "
                        "discrimination need at least two.")
        test_ids = []
        for row in rep.counted:
            test_ids += [gid for gid in row.tests if gid not in test_ids]
        points = {gid: next(row.tests[gid].points for row in rep.counted if gid in row.tests) for gid in test_ids}
        rep.tests = [_test_stats(rep.counted, gid, points[gid]) for gid in test_ids]
        rep.mistakes = [_mistakes(rep.counted, gid) for gid in test_ids]
        rep.attempts = _attempts(history, a, {row.student for row in rep.counted})
        out[a] = rep
    return out
