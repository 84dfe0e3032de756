"""The report's numbers on small made-up workspaces (no kernel): each against something this
project did not write (scipy's statistics, Python's own) or a count done by hand, and the odd data
an instructor will meet: no submission, one, everyone passing, failed and flagged submissions.
The report of a graded class is in test_report_class.py."""

import random

import pytest
import scipy.stats

import nbtools
from autograder import contract
from autograder.grading import results
from autograder.grading.results import Record
from autograder.reports import analysis, report, similar

A = "A1"


def _record(student, passes, points=(2, 3, 1), mistakes=None, **kw):
    tests = [results.TestResult(f"test_e{i}", ok, "" if ok else "AssertionError: no", points=p,
                        mistake="" if ok else (mistakes or {}).get(i, contract.UNRECOGNISED))
             for i, (ok, p) in enumerate(zip(passes, points))]
    return Record(student, A, kw.pop("status", "graded"), tests=tests, **kw)


@pytest.fixture(scope="module")
def empty_gradebook(tmp_path_factory):
    """nbgrader's gradebook of an empty workspace, made once (its migrations take seconds)."""
    from autograder.reports import export
    ws = tmp_path_factory.mktemp("gradebook")
    export.rows(ws)
    return ws / "gradebook.db"


@pytest.fixture
def workspace(tmp_path, empty_gradebook):
    def make(records, history=True):
        import shutil
        ws = tmp_path / "ws"
        ws.mkdir()
        shutil.copy(empty_gradebook, ws / "gradebook.db")
        return _fill(ws, records, history)
    return make


def _fill(ws, records, history):
    for r in records:
        results.save(ws, r)
        if history and r.status == "graded":
            results.append_history(ws, r)
    return ws


def test_point_biserial_and_upper_lower_against_scipy_and_a_count_by_hand():
    rng = random.Random(3)
    rows = [analysis.Row(f"s{i:02d}", 0.0, 0.0, {}) for i in range(30)]
    passed = [rng.random() < 0.6 for _ in rows]
    rest = [rng.randint(0, 10) + (3 if p else 0) for p in passed]
    assert analysis.point_biserial(passed, rest) == pytest.approx(scipy.stats.pointbiserialr(passed, rest).statistic)
    for r, p, s in zip(rows, passed, rest):
        r.tests["t"] = results.TestResult("t", p, points=1)
        r.raw = s + p
    ranked = sorted(rows, key=lambda r: (-r.raw, r.student))
    g = round(0.27 * 30)                     # 8 in each group
    by_hand = sum(r.tests["t"].passed for r in ranked[:g]) / g - sum(r.tests["t"].passed for r in ranked[-g:]) / g
    assert analysis.upper_lower(rows, "t") == pytest.approx(by_hand)
    assert analysis.point_biserial([True, True, True], [1, 2, 3]) is None     # nobody failed: undefined


def test_summary_agrees_with_the_standard_library():
    import statistics
    xs = [3.0, 7.5, 1.0, 9.0, 4.0, 4.0, 8.0]
    s = analysis.summarise(xs)
    q = statistics.quantiles(xs, n=4, method="inclusive")
    assert (s.n, s.mean, s.median, s.q1, s.q3, s.low, s.high) == \
        (7, statistics.fmean(xs), 4.0, q[0], q[2], 1.0, 9.0)
    assert analysis.summarise([]).mean is None and analysis.summarise([5.0]).q1 is None


def test_mistakes_are_counted_by_student_with_the_unrecognised_share(workspace):
    recs = [_record("a", [False, True, True], mistakes={0: f"{A}/e0/softmax-queries"}),
            _record("b", [False, True, True], mistakes={0: f"{A}/e0/softmax-queries"}),
            _record("c", [False, True, True], mistakes={0: f"{A}/e0/no-scale"}),
            _record("d", [False, True, True]),
            _record("e", [True, True, True])]
    rep = analysis.analyse(workspace(recs))[A]
    e0 = next(m for m in rep.mistakes if m.exercise == "e0")
    assert e0.counts == {f"{A}/e0/softmax-queries": 2, f"{A}/e0/no-scale": 1}
    assert list(e0.counts) == [f"{A}/e0/softmax-queries", f"{A}/e0/no-scale"]        # most frequent first
    assert (e0.failures, e0.unrecognised, e0.unrecognised_share) == (4, 1, 0.25)
    e1 = next(t for t in rep.tests if t.grade_id == "test_e1")
    assert e1.flags == ["nearly everyone passes"] and e1.point_biserial is None


def test_failed_and_flagged_are_apart_never_zeros(workspace):
    recs = [_record("a", [True, True, True]), _record("b", [False, False, False]),
            Record("c", A, "failed", reason="the time limit was reached"),
            _record("d", [True, True, True], flags=["changed the grading environment before test_e0: assert"])]
    rep = analysis.analyse(workspace(recs))[A]
    assert [r.student for r in rep.counted] == ["a", "b"]
    assert rep.failed == [("c", "the time limit was reached")]
    assert rep.flagged[0][0] == "d" and "grading environment" in rep.flagged[0][1][0]
    assert rep.summary.n == 2 and rep.summary.mean == 3.0          # (6 + 0) / 2: no zero for c or d


@pytest.mark.parametrize("n", [0, 1])
def test_no_or_one_submission_says_so(tmp_path, workspace, n):
    recs = [_record(f"s{i}", [True, False, True]) for i in range(n)]
    recs.append(Record("x", A, "failed", reason="not a notebook"))
    reports = report.build(workspace(recs), tmp_path / "out")
    rep = reports[A]
    assert rep.summary.n == n and rep.note
    assert ("No graded submission" if n == 0 else "One graded submission") in rep.note
    page = (tmp_path / "out" / f"{A}.html").read_text()
    assert rep.note in page.replace("&#x27;", "'")
    assert all(t.point_biserial is None and t.upper_lower is None for t in rep.tests)


def test_an_empty_workspace_gives_a_course_page_that_says_so(tmp_path, workspace):
    assert report.build(workspace([]), tmp_path / "out") == {}
    assert "No assignment has a counted submission yet" in (tmp_path / "out" / "index.html").read_text()


def test_attempts_and_how_each_mistake_fell_from_first_to_last(workspace):
    ws = workspace([])
    wrong, right = _record("a", [False, True, True], mistakes={0: f"{A}/e0/x"}), _record("a", [True, True, True])
    for i, r in enumerate([wrong, wrong, right]):
        r.submission_sha256 = f"sha{i}"
        results.append_history(ws, r, None)
    results.save(ws, right)
    b = _record("b", [False, True, True], mistakes={0: f"{A}/e0/x"}, submission_sha256="b1")
    results.append_history(ws, b)
    results.append_history(ws, b)       # recorded twice (a rerun): one attempt
    results.save(ws, b)
    rep = analysis.analyse(ws)[A]
    assert rep.attempts.per_student == {"a": 3, "b": 1}
    assert rep.attempts.first_last == {f"{A}/e0/x": (2, 1)}


def test_the_report_is_closed_to_other_accounts(tmp_path, workspace):
    import os
    ws = workspace([_record("a", [True, False, True])])
    old = os.umask(0o000)            # the most open umask: the report must close itself
    try:
        report.build(ws, tmp_path / "out")
    finally:
        os.umask(old)
    for p in [tmp_path / "out", *(tmp_path / "out").iterdir()]:
        assert p.stat().st_mode & 0o007 == 0, f"{p.name} is open to other accounts: {oct(p.stat().st_mode)}"


def test_renamed_copies_look_alike_and_independent_answers_do_not():
    honest, near = nbtools.honest_answers("01_self_attention")
    if not honest:
        pytest.skip("no honest answers for 01")
    codes = {**honest["fit_scaling_exponent"]}
    codes["copy a"], codes["copy b"] = near["fit_scaling_exponent"]
    stub = 'def fit_scaling_exponent(lengths, costs):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n'
    found = similar.pairs(codes, stub, "fit_scaling_exponent", threshold=0.0)
    assert (found[0].a, found[0].b) == ("copy a", "copy b") and found[0].similarity == pytest.approx(1.0)
    assert found[1].similarity < similar.THRESHOLD
    # the stub itself, and a one-letter answer, are never compared
    assert similar.pairs({"x": stub, "y": stub}, stub, threshold=0.0) == []
    assert similar.pairs({"x": 'q1 = "C"\n', "y": 'q1 = "C"\n'}, "", threshold=0.0) == []


def test_the_releases_stub_is_discounted():
    """Two answers that share only what the release gave everyone (a class skeleton) do not look alike."""
    stub = ("class Router(nn.Module):\n    def __init__(self, d_model, n_experts, k):\n"
            "        super().__init__()\n        self.gate = nn.Linear(d_model, n_experts, bias=False)\n"
            "        self.k = k\n\n    def forward(self, x):\n        B, L, D = x.shape\n"
            "        logits = self.gate(x.reshape(B * L, D))\n")
    a = stub + ("        p = torch.softmax(logits, dim=-1)\n        w, e = p.topk(self.k, dim=-1)\n"
                "        return w / w.sum(-1, keepdim=True), e\n")
    b = stub + ("        order = torch.argsort(logits, dim=1, descending=True)[:, :self.k]\n"
                "        picked = torch.gather(logits, 1, order)\n"
                "        return torch.exp(picked - picked.logsumexp(1, True)), order\n")
    found = similar.pairs({"a": a, "b": b}, stub, threshold=0.0)
    assert not found or found[0].similarity < 0.5, found[0].similarity
    alike = similar.pairs({"a": a, "b": b}, "", threshold=0.0)
    assert alike[0].similarity >= 0.5, "with the skeleton counted, the two should look alike"


def test_the_command_works_on_a_new_workspace_without_the_environment_on_path(tmp_path):
    """`make report` starts .venv/bin/python by its path: nbgrader's gradebook must still find
    its `alembic` (it runs it for a new database)."""
    import os
    import subprocess
    import sys
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), **contract.KERNEL_ENV}
    r = subprocess.run([sys.executable, "-m", "autograder", "report", "--workspace", str(tmp_path / "ws")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no graded submission" in r.stdout and (tmp_path / "ws" / "report" / "index.html").exists()
