"""Tests that can fail, and say why: every plausible wrong answer kept in tests/wrong/ loses its points.

The solution notebook's cells run once per notebook in one namespace (as nbgrader would run
them, QUICK); each wrong answer then runs in a copy of that namespace together with its
exercise's test cell. Typical mistakes must already fail the VISIBLE tests (before grading), with
a message that names the mistake; subtle ones pass the visible tests and must fail the hidden
ones, so the hidden tests are proven to matter. Every wrong answer's failure is also a named
mistake (archlab.checks.mistake beside its hint, or one of contract.BUILTIN_MISTAKES): the grader
records its id for the instructor's report. The end-to-end grading of wrong submissions is in
test_autograde.py.
"""

import warnings

import pytest

import nbtools
from autograder import contract
from autograder.paths import present_assignments

CASES = [(a, gid, label) for a in present_assignments()
         for gid, answers in nbtools.wrong_answers(a).items() for label in answers]
VISIBLE = [c for c in CASES if nbtools.wrong_answers(c[0])[c[1]][c[2]].kind == "visible"]
HIDDEN = [c for c in CASES if nbtools.wrong_answers(c[0])[c[1]][c[2]].kind == "hidden"]


@pytest.mark.parametrize("assignment", present_assignments())
def test_every_exercise_has_typical_and_subtle_wrong_answers(assignment):
    nb = nbtools.solution_nb(assignment)
    wrong = nbtools.wrong_answers(assignment)
    for gid in nbtools.answer_ids(nb):
        kinds = [w.kind for w in wrong.get(gid, {}).values()]
        assert len(kinds) >= 2, f"{assignment}: {gid} needs at least two wrong answers in tests/wrong/"
        assert "visible" in kinds, f"{assignment}: {gid} needs a typical mistake that its visible tests name"
        assert "hidden" in kinds, f"{assignment}: {gid} needs a mistake that only its hidden tests catch"
    assert set(wrong) <= set(nbtools.answer_ids(nb)), \
        f"tests/wrong/ names unknown exercises: {set(wrong) - set(nbtools.answer_ids(nb))}"


@pytest.mark.parametrize("assignment", present_assignments())
def test_solution_passes_every_test_cell(assignment, executed):
    nb, ns = executed(assignment)
    for gid in nbtools.answer_ids(nb):
        err = nbtools.run_test_cell(nb, gid, dict(ns))
        assert err is None, f"{assignment}: the solution fails test_{gid}: {err!r}"


def _run_wrong(assignment, grade_id, label, executed, visible_only=False):
    nb, ns = executed(assignment)
    ns = dict(ns)
    exec(compile(nbtools.wrong_answers(assignment)[grade_id][label].code, f"<wrong {label}>", "exec"), ns)
    return nbtools.run_test_cell(nb, grade_id, ns, visible_only=visible_only)


@pytest.mark.parametrize("assignment,grade_id,label", CASES)
def test_wrong_answer_fails(assignment, grade_id, label, executed):
    err = _run_wrong(assignment, grade_id, label, executed)
    assert err is not None, f"{assignment}: the wrong answer '{label}' for {grade_id} passes its tests"
    source = nbtools.cell(executed(assignment)[0], f"test_{grade_id}").source
    named = contract.recognise(source, f"{type(err).__name__}: {err}", assignment, f"test_{grade_id}")
    assert named != contract.UNRECOGNISED, (f"{assignment}: the failure of '{label}' for {grade_id} is no named "
                                            f"mistake: give its hint a slug, mistake(\"slug\", \"hint\"):\n{err}")
    slug = nbtools.wrong_answers(assignment)[grade_id][label].mistake
    assert slug is None or named == contract.mistake_id(assignment, f"test_{grade_id}", slug), (
        f"{assignment}: '{label}' for {grade_id} is recorded as {named}, not as the mistake it makes, {slug!r}: "
        f"the hint that matches its failure must carry that slug")


@pytest.mark.parametrize("assignment,grade_id,label", VISIBLE)
def test_typical_mistake_fails_a_visible_test_that_names_it(assignment, grade_id, label, executed):
    keyword = nbtools.wrong_answers(assignment)[grade_id][label].visible
    err = _run_wrong(assignment, grade_id, label, executed, visible_only=True)
    assert err is not None, f"{assignment}: the typical mistake '{label}' passes the visible tests of {grade_id}"
    assert keyword.lower() in str(err).lower(), (f"{assignment}: the visible tests of {grade_id} do not name the "
                                                 f"mistake '{label}' (no {keyword!r} in the message):\n{err}")


@pytest.mark.parametrize("assignment,grade_id,label", HIDDEN)
def test_subtle_mistake_passes_visible_tests_and_fails_hidden_ones(assignment, grade_id, label, executed):
    keyword = nbtools.wrong_answers(assignment)[grade_id][label].hidden
    err = _run_wrong(assignment, grade_id, label, executed, visible_only=True)
    assert err is None, f"{assignment}: '{label}' was meant to pass the visible tests of {grade_id}: {err!r}"
    err = _run_wrong(assignment, grade_id, label, executed)
    assert err is not None, f"{assignment}: the hidden tests of {grade_id} miss '{label}'"
    assert keyword.lower() in str(err).lower(), (f"{assignment}: the hidden tests of {grade_id} fail '{label}' "
                                                 f"without {keyword!r} in the message:\n{err}")


HONEST = [(a, ex, label) for a in present_assignments() for ex, variants in nbtools.honest_answers(a)[0].items()
          for label in variants] + \
         [(a, ex, label) for a in present_assignments() for ex, pair in nbtools.honest_answers(a)[1].items()
          for label in ("original", "renamed copy")]


@pytest.mark.parametrize("assignment,grade_id,label", HONEST)
def test_honest_answers_pass_their_tests(assignment, grade_id, label, executed):
    """tests/honest/'s independent right answers (the report's look-alike check) are right."""
    honest, near = nbtools.honest_answers(assignment)
    code = honest[grade_id][label] if label in honest.get(grade_id, {}) else \
        near[grade_id][("original", "renamed copy").index(label)]
    nb, ns = executed(assignment)
    ns = dict(ns)
    with warnings.catch_warnings():     # graded, a warning is output on stderr, and that scores 0
        warnings.simplefilter("error")
        exec(compile(code, f"<honest {label}>", "exec"), ns)
        err = nbtools.run_test_cell(nb, grade_id, ns)
    assert err is None, f"{assignment}: the honest answer '{label}' for {grade_id} fails: {err!r}"
