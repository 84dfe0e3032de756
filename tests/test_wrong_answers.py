"""Hidden tests can fail: every plausible wrong answer kept in tests/wrong/ fails its test cell.

The solution notebook's cells run once per notebook in one namespace (as nbgrader would run
them, QUICK); each wrong answer then runs in a copy of that namespace together with its
exercise's test cell. The end-to-end grading of wrong submissions is in test_autograde.py.
"""

import pytest

import nbtools
from autograder.paths import present_assignments

CASES = [(a, gid, label) for a in present_assignments()
         for gid, answers in nbtools.wrong_answers(a).items() for label in answers]


@pytest.mark.parametrize("assignment", present_assignments())
def test_every_exercise_has_two_wrong_answers(assignment):
    nb = nbtools.solution_nb(assignment)
    wrong = nbtools.wrong_answers(assignment)
    for gid in nbtools.answer_ids(nb):
        assert len(wrong.get(gid, {})) >= 2, f"{assignment}: {gid} needs at least two wrong answers in tests/wrong/"


@pytest.mark.parametrize("assignment", present_assignments())
def test_solution_passes_every_test_cell(assignment, executed):
    nb, ns = executed(assignment)
    for gid in nbtools.answer_ids(nb):
        err = nbtools.run_test_cell(nb, gid, dict(ns))
        assert err is None, f"{assignment}: the solution fails test_{gid}: {err!r}"


@pytest.mark.parametrize("assignment,grade_id,label", CASES)
def test_wrong_answer_fails(assignment, grade_id, label, executed):
    nb, ns = executed(assignment)
    ns = dict(ns)
    exec(compile(nbtools.wrong_answers(assignment)[grade_id][label], f"<wrong {label}>", "exec"), ns)
    err = nbtools.run_test_cell(nb, grade_id, ns)
    assert err is not None, f"{assignment}: the wrong answer '{label}' for {grade_id} passes its tests"
