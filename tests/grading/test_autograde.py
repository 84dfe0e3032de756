"""Through the real grader: one batch of submissions autograded by `autograder.grade`.

The batch holds a fully correct submission, the untouched release, two submissions made of
wrong answers — `wrong1` the first typical mistake kept in tests/wrong/ for every exercise (its
visible tests name it), `wrong2` the first subtle one (only hidden tests catch it, so a grader
that skipped the hidden tests would give it points) — and a file that is not a notebook.
nbgrader executes each in its own kernel; scores come from its gradebook.
"""

import csv

import pytest

import nbtools
from autograder import contract, paths

IDS = paths.present_assignments()
# the batch: every notebook, five students (and the report's class in 01 and 04)
pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


@pytest.fixture(scope="module")
def graded(autograde_batch):
    rows, out, _, _ = autograde_batch     # tests/conftest.py builds and grades the batch
    return rows, out


def _points(assignment):
    sol = nbtools.solution_nb(assignment)
    return {contract.grade_id(c): contract.points(c) for c in sol.cells if contract.is_test(c)}


@pytest.mark.parametrize("assignment", IDS)
def test_solution_gets_full_autograded_points(graded, assignment):
    rows, _ = graded
    r = rows["alice", assignment]
    assert r.status in ("graded", "needs manual grading"), r.reason
    assert r.autograded_max == sum(_points(assignment).values())
    assert r.autograded_score == r.autograded_max, {k: v for k, v in r.cells.items() if v[0] != v[1]}


@pytest.mark.parametrize("assignment", IDS)
def test_untouched_release_gets_zero(graded, assignment):
    rows, _ = graded
    r = rows["bob", assignment]
    assert r.status != "failed", r.reason
    assert r.autograded_max == sum(_points(assignment).values())
    assert r.autograded_score == 0


@pytest.mark.parametrize("assignment", IDS)
@pytest.mark.parametrize("student", ["wrong1", "wrong2"])
def test_each_wrong_answer_loses_its_exercise_points(graded, assignment, student):
    rows, _ = graded
    r = rows[student, assignment]
    assert r.status != "failed", r.reason
    for gid in nbtools.wrong_answers(assignment):
        score, max_score = r.cells[f"test_{gid}"]
        assert max_score > 0 and score == 0, f"{student}: test_{gid} gave {score}/{max_score}"


@pytest.mark.parametrize("assignment", IDS)
def test_feedback_names_the_mistake_and_shows_no_hidden_test(graded, assignment):
    """wrong1's feedback page carries each visible diagnosis; no page shows a hidden test's source."""
    import html
    _, out = graded
    ws = out.parent / "ws"
    page = html.unescape((ws / "feedback" / "wrong1" / assignment / f"{assignment}.html").read_text())
    wrong = nbtools.first_wrong(assignment, "visible")
    for gid, w in wrong.items():
        earlier, keyword = nbtools.built_on(assignment).get(gid, ((), None))
        if any(e in wrong for e in earlier):   # wrong1 got those wrong too: the test must point at them
            assert keyword.lower() in page.lower(), f"wrong1's feedback of {gid} does not say to fix {earlier} first"
            continue
        assert w.visible.lower() in page.lower(), \
            f"the feedback of wrong1 does not show the diagnosis of {gid}: {w.visible!r}"
    hidden = [line for c in nbtools.solution_nb(assignment).cells for line in contract.hidden_lines(c.source)]
    assert contract.significant_lines(hidden), f"{assignment}: no hidden test lines to look for"
    for student in ("alice", "wrong1", "wrong2"):
        page = html.unescape((ws / "feedback" / student / assignment / f"{assignment}.html").read_text())
        leaked = contract.shown(hidden, page)
        assert not leaked, f"the feedback of {student} shows hidden test lines: {leaked[:2]}"


@pytest.mark.parametrize("assignment", IDS)
def test_invalid_json_is_failed_not_zero(graded, assignment):
    rows, out = graded
    r = rows["broken", assignment]
    assert r.status == "failed" and "not a valid notebook" in r.reason
    with open(out) as f:
        csv_rows = {(x["student_id"], x["assignment"]): x for x in csv.DictReader(f)}
    assert csv_rows["broken", assignment]["status"] == "failed"
    assert csv_rows["alice", assignment]["status"] != "failed"
