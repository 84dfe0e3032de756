"""Feedback for students: each test's name, what it checks, passed or not, and a message.

Built from the grader's results, not from the executed notebook, so it can never show hidden
test source or a traceback: a message is the exception's type and its message, which the
course's checks write for students ("weights: this looks like a known mistake: ...", then the
mismatch lines).

Two kinds of page, one rule per assignment, stated at the top of every page:

- **full** (after the deadline, `feedback --release`, or an assignment set to full feedback on
  submit): every test with its message, hidden or not.
- **counts** (graded on submit, before the deadline): every visible test with its whole
  message; of the hidden checks only how many pass ("hidden checks: 2 of 3 pass"), never their
  message; the automatic score so far, the points an instructor still grades by hand, and how
  many gradings the student has left (autograder.classroom.on_submit).

A submission the grader could not grade because of the grader (record.retry) is never shown as a
zero: its page says it could not be graded yet and that the course staff has been told.
"""

import html
from dataclasses import dataclass
from pathlib import Path

from autograder import contract
from autograder.grading import results as grading_results

FULL, COUNTS = "full", "counts"
FULL_RULE = "Full feedback: every test with its message, hidden tests included (their code is never shown)."
NOT_YET = "could not be graded yet: the course staff has been told"


@dataclass
class Context:
    """What a page says around the tests: the rule it follows and the student's budget."""
    mode: str = FULL
    rule: str = FULL_RULE          # one sentence, the assignment's feedback rule
    budget: str = ""               # "Gradings left: ..." (empty: no budget line)
    submitted: str = ""            # when the graded submission was made, as the student reads it


STYLE = """<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}
td,th{padding:.3em .6em;border-bottom:1px solid #ddd;vertical-align:top}
.ok td:nth-child(3){color:#070}td:nth-child(4){white-space:pre-wrap;font-family:monospace;font-size:90%}
.bad td:nth-child(3){color:#a00}.rule{background:#f4f4f4;padding:.5em}</style>"""


def _page(title, body):
    return (f'<!doctype html><html><head><meta charset="utf-8">\n<title>{html.escape(title)}</title>\n{STYLE}'
            f"</head><body>\n{body}\n</body></html>\n")


def _head(record, ctx):
    lines = [f"<h1>{html.escape(record.assignment)}: feedback for {html.escape(record.student_id)}</h1>",
             f"<p class='rule' id='rule'>{html.escape(ctx.rule)}</p>"]
    if ctx.submitted:
        lines.append(f"<p>Submission of {html.escape(ctx.submitted)}.</p>")
    if ctx.budget:
        lines.append(f"<p id='budget'>{html.escape(ctx.budget)}</p>")
    return lines


def _message(t, mode):
    if t.passed:
        return ""
    if mode == COUNTS and t.failed_in == contract.HIDDEN:
        return ""        # a hidden check's message names what it checks: after the deadline
    return t.message


def _hidden_cell(t, mode):
    if not t.hidden:
        return "none" if mode == COUNTS else ""
    if t.failed_in == contract.VISIBLE and not t.hidden_passed and not t.passed:
        return f"{t.hidden}, not run yet: the visible checks fail first"
    return f"{t.hidden_passed} of {t.hidden} pass"


def render(record, ctx=None):
    """The feedback page of one Record: each test's description (its docstring, captured when
    the submission was graded), passed or not, the message the ctx's rule allows, and (counts)
    how many hidden checks pass."""
    ctx = ctx or Context()
    head = _head(record, ctx)
    if record.status == "failed" and record.retry:
        return _page(f"Feedback: {record.assignment}", "\n".join(
            [*head, f"<p id='status'>Grading: {NOT_YET}. This is not a score: the submission will be graded "
                    f"again.</p>"]))
    counts = ctx.mode == COUNTS
    rows = []
    for t in record.tests:
        mark = "passed" if t.passed else "not passed"
        hidden = f"<td>{html.escape(_hidden_cell(t, ctx.mode))}</td>" if counts else ""
        rows.append(f"<tr class='{'ok' if t.passed else 'bad'}'><td>{html.escape(t.grade_id)}</td>"
                    f"<td>{html.escape(t.description)}</td><td>{mark}</td>"
                    f"<td>{html.escape(_message(t, ctx.mode))}</td>{hidden}</tr>")
    status = record.status + (f": {record.reason}" if record.reason else "")
    got, possible = record.auto_score
    score = (f"<p id='score'>Automatic score so far: {got:g} of {possible:g} points."
             + (f" Written answers ({record.manual_points:g} points) are graded by your instructor."
                if record.manual_points else "") + "</p>") if record.status == "graded" else ""
    explain = ("Hidden checks count towards the grade; before the deadline you see how many pass, "
               "after it what they say." if counts else
               "Hidden tests count towards the grade; their code is not shown.")
    body = [*head, f"<p id='status'>Grading: {html.escape(status)}. {explain}</p>", score,
            "<table><tr><th>test</th><th>what it checks</th><th>result</th><th>message</th>"
            + ("<th>hidden checks</th>" if counts else "") + "</tr>", *rows, "</table>"]
    return _page(f"Feedback: {record.assignment}", "\n".join(body))


def render_waiting(student, assignment, at, ctx):
    """The page of a submission kept but not graded yet: the student's gradings are used up until
    `at` (a time as the student reads it, e.g. "14:05:00 UTC")."""
    body = [f"<h1>{html.escape(assignment)}: feedback for {html.escape(student)}</h1>",
            f"<p class='rule' id='rule'>{html.escape(ctx.rule)}</p>",
            f"<p id='status'>Your submission is kept and counts as your latest. It will be graded at "
            f"{html.escape(at)}, when your next grading is available; fetch feedback again then.</p>"]
    if ctx.budget:
        body.append(f"<p id='budget'>{html.escape(ctx.budget)}</p>")
    return _page(f"Feedback: {assignment}", "\n".join(body))


def path(ws, student, assignment):
    return Path(ws) / "feedback" / student / assignment / f"{assignment}.html"


def write(ws, record, ctx=None):
    out = path(ws, record.student_id, record.assignment)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(record, ctx))
    return out


def generate(ws):
    """The full page of every graded submission (after the deadline: `feedback --release`)."""
    return [write(ws, record) for record in grading_results.load(ws).values()]
