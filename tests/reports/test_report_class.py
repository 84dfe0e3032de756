"""The instructor's report of a class whose make-up is known (nbtools.report_class), graded by the
course's grader in the shared batch (tests/conftest.py: autograde_batch, class_report).

Per assignment (01 and 04), the class is: alice (the solution), bob and blank1 (the untouched
release), wrong1 and wrong2 (the first typical and the first subtle mistake of every exercise),
ten students s01..s10 who carry every other wrong answer of tests/wrong/ once, and a file that is
not a notebook. In 01's fit_scaling_exponent, five of the ten wrote independent right answers
(tests/honest/) and two handed in one answer and a renamed copy of it.

What each student should fail is derived here from the make-up alone: a planted wrong answer
fails its exercise with the mistake whose hint holds its tests/wrong keyword; an exercise built on
another one (BUILT_ON) that the student has visibly wrong fails with the hint that says so; a blank
fails everything as not answered. The report must count exactly that.
"""

import shutil

import pytest
import scipy.stats
from nbgrader.api import Gradebook

import nbtools
from autograder import contract, nbg, paths
from autograder.grading import results
from autograder.reports import report, similar

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]
PRESENT = [a for a in nbtools.CLASS_ASSIGNMENTS if a in paths.present_assignments()]
BLANKS = ("bob", nbtools.CLASS_BLANK)
# keywords of tests/wrong/ that are archlab.checks' own messages, named by the course (contract.BUILTIN_MISTAKES)
BUILTIN_KEYWORDS = {"must be your own code": "calls-reference", "must compute attention itself": "fused-attention",
                    "write '": "answer-form", "must be a string": "answer-form", "must be an int": None}


def _slug_for(source, w=None, keyword=None):
    """The slug a wrong answer fails with: the one it names (Wrong.mistake), or that of the one hint
    in the test cell whose literal text holds its keyword."""
    if w is not None and w.mistake:
        return w.mistake
    keyword = keyword or w.visible or w.hidden
    for key, slug in BUILTIN_KEYWORDS.items():
        if keyword.lower().startswith(key) and slug:
            return slug
    found = {slug for slug, texts in contract.hint_texts(source).items()
             if any(keyword.lower() in t.lower() for t in texts)}
    assert len(found) == 1, f"the keyword {keyword!r} is in the hints {sorted(found)} (need exactly one)"
    return found.pop()


def _run_here(assignment, executed, answers, ex, source):
    """What the test of `ex` says, run in this process on the solution's namespace with `answers`
    (an exercise built on others, whose outcome the make-up alone does not fix)."""
    nb, ns = executed(assignment)
    ns = dict(ns)
    for code in answers.values():
        exec(compile(code, "<answer>", "exec"), ns)
    err = nbtools.run_test_cell(nb, ex, ns)
    gid = f"test_{ex}"
    return None if err is None else contract.recognise(source, f"{type(err).__name__}: {err}", assignment, gid)


def _expected(assignment, executed):
    """{student: {test grade id: mistake id}} of every failure the make-up implies (passes absent)."""
    sol = nbtools.solution_nb(assignment)
    wrong, deps = nbtools.wrong_answers(assignment), nbtools.built_on(assignment)
    source = {contract.grade_id(c): c.source for c in sol.cells if contract.is_test(c)}
    planted = {s: {ex: wrong[ex][label] for ex, (k, label, _) in p.items() if k == "wrong"}
               for s, p in nbtools.report_class(assignment).items()}
    for student, kind in nbtools.WRONG_STUDENTS.items():
        planted[student] = nbtools.first_wrong(assignment, kind)
    planted["alice"] = {}
    out = {}
    for student, mine in planted.items():
        fails = {}
        for ex in nbtools.answer_ids(sol):
            gid = f"test_{ex}"
            if gid not in source:
                continue
            pre, _ = deps.get(ex, ((), None))
            if any(p in mine for p in pre):       # built on an answer of its own that is wrong
                mid = _run_here(assignment, executed, {e: w.code for e, w in mine.items()}, ex, source[gid])
                if mid:
                    fails[gid] = mid
            elif ex in mine:
                fails[gid] = contract.mistake_id(assignment, gid, _slug_for(source[gid], mine[ex]))
        out[student] = fails
    for student in BLANKS:
        out[student] = {gid: contract.mistake_id(assignment, gid, "not-answered") for gid in source}
    return out


@pytest.fixture(scope="module", params=PRESENT)
def made(request, class_report, executed):
    reports, out, ws = class_report
    a = request.param
    return a, reports[a], _expected(a, executed), results.load(ws)


def test_every_mistake_count_equals_the_known_number(made):
    a, rep, expected, _ = made
    want = {}
    for fails in expected.values():
        for gid, mid in fails.items():
            want.setdefault(contract.exercise_of(gid), {}).setdefault(mid, 0)
            want[contract.exercise_of(gid)][mid] += 1
    got = {m.exercise: {**m.counts, **({contract.UNRECOGNISED: m.unrecognised} if m.unrecognised else {})}
           for m in rep.mistakes if m.failures}
    assert got == want
    assert all(m.unknown == 0 for m in rep.mistakes)


def test_pass_rates_equal_the_known_shares_and_failed_files_are_apart(made):
    a, rep, expected, _ = made
    counted = sorted(r.student for r in rep.counted)
    assert counted == sorted(expected), "the counted submissions are not the class"
    assert [s for s, _ in rep.failed] == ["broken"] and "not a valid notebook" in rep.failed[0][1]
    assert rep.summary.n == len(expected)
    for t in rep.tests:
        fails = sum(1 for f in expected.values() if t.grade_id in f)
        assert (t.n, t.passed) == (len(expected), len(expected) - fails), t.grade_id
        assert t.pass_rate == pytest.approx((len(expected) - fails) / len(expected))


def test_discrimination_equals_scipys_point_biserial(made):
    a, rep, _, records = made
    mine = [r for r in records.values() if r.assignment == a and r.status == "graded" and not r.flags]
    assert len(mine) == rep.summary.n
    checked = 0
    for t in rep.tests:
        passed = [next(x for x in r.tests if x.grade_id == t.grade_id).passed for r in mine]
        raw = [r.auto_score[0] + r.manual_points for r in mine]
        rest = [s - (t.points if p else 0) for s, p in zip(raw, passed)]
        if len(set(passed)) < 2 or len(set(rest)) < 2:
            assert t.point_biserial is None, t.grade_id
            continue
        assert t.point_biserial == pytest.approx(scipy.stats.pointbiserialr(passed, rest).statistic, abs=1e-9)
        checked += 1
    assert checked >= 3, "too few tests that vary to check the discrimination"


def test_the_near_copies_are_the_top_pair_and_independent_answers_do_not_look_alike(class_report):
    reports, _, ws = class_report
    if "01_self_attention" not in reports:
        pytest.skip("01 is not among the assignments")
    honest, near = nbtools.honest_answers("01_self_attention")
    plan = nbtools.report_class("01_self_attention")
    for ex in near:
        pairs = reports["01_self_attention"].similar[ex]
        copies = sorted(s for s, p in plan.items() if p.get(ex, ("",))[0] == "near")
        assert pairs and sorted((pairs[0].a, pairs[0].b)) == copies, [(p.a, p.b, p.similarity) for p in pairs[:3]]
        assert all(p.similarity < pairs[0].similarity for p in pairs[1:])
        independent = {s for s, p in plan.items() if p.get(ex, ("",))[0] == "honest"} | {"alice"}
        assert len(independent) >= 4
        # every pair of them, at any threshold, stays below the report's
        codes = {s: nbtools.cell(nbtools.read_submission(ws, s, "01_self_attention"), ex).source for s in independent}
        stub = nbtools.cell(nbtools.release_nb("01_self_attention"), ex).source
        top = similar.pairs(codes, stub, ex, threshold=0.0)
        assert top and top[0].similarity < similar.THRESHOLD, [(p.a, p.b, p.similarity) for p in top[:3]]


def test_a_manual_score_entered_later_changes_the_next_build(class_report, tmp_path):
    reports, _, ws = class_report
    a = PRESENT[0]
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy, ignore=shutil.ignore_patterns("autograded", "feedback", "report"))
    before = {r.student: r.raw for r in reports[a].counted}
    cfg = nbg.config(copy)
    with Gradebook(cfg.CourseDirectory.db_url) as gb:
        sub = gb.find_submission(a, "alice")
        written = [g for nb in sub.notebooks for g in nb.grades if g.cell_type == "markdown"]
        assert written, f"{a} has no written answer to grade by hand"
        written[0].manual_score = points = written[0].max_score
        gb.db.commit()
    again = report.build(copy, tmp_path / "report", [a])[a]
    after = {r.student: r.raw for r in again.counted}
    assert after["alice"] == pytest.approx(before["alice"] + points)
    assert {s: v for s, v in after.items() if s != "alice"} == {s: v for s, v in before.items() if s != "alice"}


def test_the_csv_tables_say_what_the_pages_say(class_report):
    import csv
    reports, out, _ = class_report
    for a, rep in reports.items():
        with open(out / f"{a}.tests.csv") as f:
            rows = {r["grade_id"]: r for r in csv.DictReader(f)}
        assert set(rows) == {t.grade_id for t in rep.tests}
        for t in rep.tests:
            assert int(rows[t.grade_id]["passed"]) == t.passed
        with open(out / f"{a}.mistakes.csv") as f:
            n = sum(int(r["students"]) for r in csv.DictReader(f) if r["mistake"] != contract.UNRECOGNISED)
        assert n == sum(sum(m.counts.values()) for m in rep.mistakes)
    assert (out / "index.html").exists() and all((out / f"{a}.html").exists() for a in reports)
