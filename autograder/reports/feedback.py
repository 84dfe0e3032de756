"""Feedback for students: each test's name, what it checks, passed or not, and a message.

Built from the grader's results, not from the executed notebook, so it can never show hidden
test source or a traceback: a message is the exception's type and its message, which the
course's checks write for students ("weights: this looks like a known mistake: ...", then the
mismatch lines).
"""

import html
from pathlib import Path

from autograder.grading import results as grading_results


def render(record):
    """The feedback page of one Record: each test's description (its docstring, captured when
    the submission was graded), passed or not, and the message."""
    rows = []
    for t in record.tests:
        mark = "passed" if t.passed else "not passed"
        rows.append(f"<tr class='{'ok' if t.passed else 'bad'}'><td>{html.escape(t.grade_id)}</td>"
                    f"<td>{html.escape(t.description)}</td><td>{mark}</td>"
                    f"<td>{html.escape(t.message)}</td></tr>")
    status = record.status + (f": {record.reason}" if record.reason else "")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Feedback: {html.escape(record.assignment)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
td,th{{padding:.3em .6em;border-bottom:1px solid #ddd;vertical-align:top}}
.ok td:nth-child(3){{color:#070}}td:nth-child(4){{white-space:pre-wrap;font-family:monospace;font-size:90%}}
.bad td:nth-child(3){{color:#a00}}</style></head><body>
<h1>{html.escape(record.assignment)}: feedback for {html.escape(record.student_id)}</h1>
<p>Grading: {html.escape(status)}. Hidden tests count towards the grade; their code is not shown.
Written answers are graded by your instructor.</p>
<table><tr><th>test</th><th>what it checks</th><th>result</th><th>message</th></tr>
{''.join(rows)}
</table></body></html>
"""


def generate(ws):
    ws = Path(ws)
    results = grading_results.load(ws)
    written = []
    for record in results.values():
        out = ws / "feedback" / record.student_id / record.assignment / f"{record.assignment}.html"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render(record))
        written.append(out)
    return written
