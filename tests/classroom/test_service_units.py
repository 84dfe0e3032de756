"""The grading service's rules without a kernel: the budget's token bucket, the feedback rule of an
assignment, the fair order of the queue, and what a page before the deadline shows."""

import datetime
import math
from pathlib import Path

import pytest

from autograder import contract
from autograder.classroom import on_submit, service
from autograder.errors import CourseError
from autograder.grading import results
from autograder.reports import feedback


@pytest.mark.parametrize("text, gradings, window", [("3/60m", 3, 3600), ("2/30s", 2, 30), ("5/1h", 5, 3600),
                                                     (" 10 / 1d ", 10, 86400)])
def test_a_budget_is_gradings_per_time(text, gradings, window):
    b = on_submit.Budget.parse(text)
    assert (b.gradings, b.window_s, b.refill_s) == (gradings, window, window / gradings)


@pytest.mark.parametrize("text", ["unlimited", "off", "", None])
def test_no_budget(text):
    assert on_submit.Budget.parse(text) is None


@pytest.mark.parametrize("text", ["3", "0/60m", "3/0m", "3/60x", "three/1h", "-1/1h"])
def test_a_bad_budget_says_how_to_write_one(text):
    with pytest.raises(CourseError, match="N/TIME"):
        on_submit.Budget.parse(text)


def test_the_bucket_starts_full_empties_and_refills_one_at_a_time():
    budget, b, t = on_submit.Budget.parse("3/60s"), on_submit.Bucket(), 1000.0
    assert [b.take(budget, t) for _ in range(4)] == [True, True, True, False]
    assert b.next_at(budget, t) == pytest.approx(t + 20)        # one back every 60/3 s
    assert not b.take(budget, t + 19.9)
    assert b.take(budget, t + 20.0) and not b.take(budget, t + 20.0)
    assert b.level(budget, t + 10_000) == 3                     # never more than the bucket holds
    again = on_submit.Bucket.from_dict(b.to_dict())             # the service keeps it on disk
    assert again.level(budget, t + 30) == pytest.approx(b.level(budget, t + 30))
    assert "Gradings left: 0 of 3" in b.describe(budget, t + 20.0)
    assert "not limited" in b.describe(budget, t + 20.0, after_deadline=True)
    assert on_submit.Bucket().take(None, t)                     # unlimited


def test_the_rule_of_an_assignment_is_one_sentence_that_names_the_deadline():
    due = datetime.datetime(2026, 12, 2, 17, 0)
    rule = on_submit.Rule("01_self_attention")
    before, after = due - datetime.timedelta(minutes=1), due + datetime.timedelta(minutes=1)
    assert rule.mode(due, before) == feedback.COUNTS and rule.mode(due, after) == feedback.FULL
    assert "2026-12-02 17:00 UTC" in rule.sentence(due, before) and "counts" in rule.sentence(due, before)
    assert rule.sentence(due, after).startswith("Graded on submit, after the deadline")
    full = on_submit.Rule("01_self_attention", before_deadline=feedback.FULL)
    assert full.mode(due, before) == feedback.FULL
    with pytest.raises(CourseError, match="counts or full"):
        on_submit.Rule("01_self_attention", before_deadline="some")


def test_rules_are_kept_per_assignment(tmp_path):
    on_submit.set_rule(tmp_path, "01_self_attention", budget="3/60m")
    on_submit.set_rule(tmp_path, "02_mamba", before_deadline="full")
    on_submit.set_rule(tmp_path, "01_self_attention", enabled=False)
    rules = on_submit.load(tmp_path)
    assert rules["01_self_attention"].budget == "3/60m" and not rules["01_self_attention"].enabled
    assert rules["02_mamba"].before_deadline == "full" and rules["02_mamba"].enabled
    (tmp_path / on_submit.FILE).write_text("{ not json")
    with pytest.raises(CourseError, match="not valid JSON"):
        on_submit.load(tmp_path)


def _pending(student, assignment, t):
    return service.Pending(student, assignment, Path(f"/x/{student}+{assignment}+{t}+r"), float(t))


def test_the_queue_is_round_robin_by_student_and_newest_first():
    # ten submissions of one student arrive before one each of three others
    flood = [_pending("ann", f"a{i}", i) for i in range(10)]
    others = [_pending(s, "a0", 20 + i) for i, s in enumerate(["bob", "cy", "dee"])]
    order = service.fair_order(flood + others, served={})
    assert [p.student for p in order] == ["ann", "bob", "cy", "dee"]
    assert order[0].assignment == "a9"                          # ann's newest first
    # ann was just served: everyone else goes first
    order = service.fair_order(flood + others, served={"ann": 5})
    assert [p.student for p in order] == ["bob", "cy", "dee", "ann"]
    # an assignment being graded right now waits for that grading to finish; the student's others do not
    assert service.fair_order(flood + others, {}, busy={"ann/a9"})[0].assignment == "a8"


def _record():
    hidden_msg = "AssertionError: hidden check: out (trial 3) differs from torch's attention"
    return results.Record("ann", "01_self_attention", "graded", manual_points=6.0, tests=[
        results.TestResult("test_a", True, "", "a: shapes", points=3, hidden=2, hidden_passed=2),
        results.TestResult("test_b", False, "AssertionError: weights: this looks like a known mistake: no scaling",
                   "b: worked example", points=2, hidden=3, hidden_passed=0, failed_in=contract.VISIBLE),
        results.TestResult("test_c", False, hidden_msg, "c: the loop", points=4, hidden=3, hidden_passed=2,
                   failed_in=contract.HIDDEN)])


def test_before_the_deadline_hidden_checks_are_counts_only():
    rule = on_submit.Rule("01_self_attention")
    due = datetime.datetime(2030, 1, 1)
    ctx = feedback.Context(mode=feedback.COUNTS, rule=rule.sentence(due, datetime.datetime(2029, 1, 1)),
                           budget="Gradings left: 1 of 3")
    page = feedback.render(_record(), ctx)
    assert "this looks like a known mistake: no scaling" in page          # visible: the whole message
    assert "differs from torch" not in page and "trial 3" not in page      # hidden: no message
    assert "2 of 3 pass" in page and "not run yet" in page
    assert "Automatic score so far: 3 of 9 points" in page and "(6 points)" in page
    assert page.index(rule.sentence(due, datetime.datetime(2029, 1, 1))) < page.index("<table>")
    assert "Gradings left: 1 of 3" in page
    full = feedback.render(_record(), feedback.Context())
    assert "differs from torch" in full and feedback.FULL_RULE in full


def test_a_grader_error_is_never_shown_as_a_zero():
    r = results.Record("ann", "01_self_attention", "failed", reason="grader error: OSError: disk full", retry=True)
    page = feedback.render(r, feedback.Context(mode=feedback.COUNTS, rule="r"))
    assert feedback.NOT_YET in page and "score so far" not in page and "0 of" not in page
    assert "disk full" not in page


def test_a_waiting_page_says_when():
    page = feedback.render_waiting("ann", "01_self_attention", on_submit.clock(0), feedback.Context(rule="r"))
    assert "00:00:00 UTC" in page and "kept" in page
    assert math.isfinite(on_submit.Bucket().next_at(on_submit.Budget.parse("1/1s"), 0))


def test_a_grader_error_leaves_the_status_once_it_is_graded(tmp_path):
    """status --live lists a grader error until a batch (or a new submission) grades that submission."""
    failures = [{"key": "s1/01_self_attention", "reason": "grader error: OSError: disk full", "at": 0.0},
                {"key": "s2/01_self_attention", "reason": "grader error: OSError: disk full", "at": 0.0}]
    for student in ("s1", "s2"):
        results.save(tmp_path, results.failed(student, "01_self_attention", "grader error: OSError: disk full",
                                              retry=True))
    assert service.still_failing(tmp_path, failures) == failures
    results.save(tmp_path, results.Record("s2", "01_self_attention", "graded"))      # the batch graded it
    assert service.still_failing(tmp_path, failures) == failures[:1]
