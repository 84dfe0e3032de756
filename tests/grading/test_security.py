"""Grading that instructors can trust: hostile submissions graded in one batch with honest ones.

Every hostile submission answers wrongly, so an honest grader gives its tests 0; each then tries
to score anyway, to read the solutions or the gradebook, to write outside its folder, or to
take the grader down (tests/hostile/corpus.py). None may gain a point, none may read a secret,
each must be failed or flagged with its reason, and the honest submissions of the same batch
must get their exact scores. Then: feedback hides hidden tests, re-running keeps manual grades.

A second, smaller batch grades the faults of corpus.FAULTS beside an honest submission: a
submission that tries to write 4 GiB into its folder, and one whose trace function stalls the
kernel. Each is failed with a reason an instructor can act on, nothing of them is left on the
grader's machine, and the honest one keeps its score.
"""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbgrader.api import Gradebook

import nbtools
from autograder import contract, grade, nbg, paths
from autograder.grading import autograde, results, runner, sandbox
from hostile import corpus, probe

NB = corpus.NB
pytestmark = [pytest.mark.skipif(NB not in paths.present_assignments(), reason="needs notebook 01"),
              pytest.mark.root, pytest.mark.notebooks, pytest.mark.slow]
LIMITS = sandbox.Limits(cell_seconds=30, notebook_seconds=240, output_bytes=1_000_000)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    ok, why = sandbox.available()
    if not ok and nbtools.in_ci():
        pytest.fail(f"CI must grade in the sandbox: {why}")
    if not ok:
        pytest.skip(f"no sandbox here: {why}")
    tmp = tmp_path_factory.mktemp("hostile")
    subs, ws = tmp / "submissions", tmp / "ws"
    rel = nbtools.release_nb(NB)
    honest = {"alice": nbtools.submission(rel, nbtools.solution_answers(NB)), "bob": rel,
              "carol": nbtools.submission(rel, {g: w.code for g, w in nbtools.first_wrong(NB, "visible").items()})}
    listener = probe.Listener()
    probe_nb, targets = probe.build(paths.ROOT, ws.resolve(), tmp, listener.port)
    for student, nb in {**honest, **corpus.build(paths.ROOT, ws.resolve()), "probe": probe_nb}.items():
        path = subs / student / NB / f"{NB}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(nb if isinstance(nb, str) else nbformat.writes(nb))
    try:
        rows = grade.grade(subs, tmp / "grades.csv", workspace=ws, limits=LIMITS,
                           settings=autograde.Settings(workers=2))
    finally:
        listener.close()
        written = [p for p in targets["writes"] if p.exists()]
        probe.remove_written(targets)
    return {r.student_id: r for r in rows}, ws, SimpleNamespace(listener=listener, targets=targets, written=written)


def _test_points():
    sol = nbtools.solution_nb(NB)
    return {contract.grade_id(c): contract.points(c) for c in sol.cells if contract.is_test(c)}


def test_honest_submissions_get_their_exact_scores(batch):
    rows, *_ = batch
    full = sum(_test_points().values())
    assert rows["alice"].autograded_score == full == rows["alice"].autograded_max
    assert rows["alice"].status == "needs manual grading"     # the written answers wait for a person
    assert rows["bob"].autograded_score == 0 and rows["bob"].status == "graded"
    assert rows["carol"].autograded_score == 0 and rows["carol"].status == "graded"
    for s in ("alice", "bob", "carol"):
        assert rows[s].flags == [], f"{s} was flagged: {rows[s].flags}"


@pytest.mark.parametrize("student", sorted(corpus.EXPECT))
def test_hostile_submission_gains_nothing_and_is_reported(batch, student):
    rows, *_ = batch
    r = rows[student]
    assert r.autograded_score == 0, f"{student} scored {r.autograded_score}: {r.cells}"
    if corpus.EXPECT[student] == "failed":
        assert r.status == "failed" and r.reason, f"{student}: {r.status} {r.reason}"
    else:
        assert r.status == "failed" or r.flags, f"{student} was neither failed nor flagged"
    print(student, r.status, r.reason, r.flags)


def test_specific_reasons(batch):
    rows, *_ = batch
    assert "not a valid notebook" in rows["h_invalid_json"].reason
    assert "a cell ran longer than" in rows["h_uninterruptible_loop"].reason
    assert "memory" in rows["h_memory_bomb"].reason
    assert "kernel died" in rows["h_os_exit"].reason
    assert any("truncated" in f for f in rows["h_huge_output"].flags)
    assert any("'test_causal_mask' was deleted" in f for f in rows["h_deleted_test_cell"].flags)
    assert any("metadata edited in 'causal_mask'" in f for f in rows["h_edited_metadata"].flags)
    assert any("locked cell 'test_fit_scaling_exponent' was edited" in f for f in rows["h_edited_test_cell"].flags)
    for s in ("h_input_transformer", "h_ast_transformer", "h_patch_comparisons", "h_patch_archlab_checks"):
        assert any("changed the grading environment" in f for f in rows[s].flags), rows[s].flags


def test_no_secret_was_read_and_nothing_written_outside(batch):
    rows, ws, _ = batch
    executed = ws / "autograded" / "h_read_secrets" / NB / f"{NB}.ipynb"
    nb = nbformat.read(executed, as_version=4)
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "nothing readable" in text and "SECRET-LEAK" not in text
    assert not list(paths.ROOT.glob("PWNED-*")) and not list(ws.glob("PWNED-*"))
    assert not list(ws.parent.glob("PWNED-*"))


def test_feedback_never_shows_hidden_tests(batch):
    rows, ws, _ = batch
    sol = nbtools.solution_nb(NB)
    hidden = [line for c in sol.cells for line in contract.hidden_lines(c.source)]
    assert contract.significant_lines(hidden)
    for student in ("alice", "carol", "h_patch_comparisons"):
        page = (ws / "feedback" / student / NB / f"{NB}.html").read_text()
        assert "test_scaled_dot_product_attention" in page
        assert ("not passed" in page) == (student != "alice")
        leaked = contract.shown(hidden, page)
        assert not leaked, f"feedback of {student} shows hidden test lines: {leaked[:2]}"
        assert "Traceback" not in page and "File \"<" not in page


def test_regrading_is_idempotent_and_keeps_manual_grades(batch):
    rows, ws, _ = batch
    db = nbg.config(ws).CourseDirectory.db_url
    with Gradebook(db) as gb:
        g = gb.find_grade("q1_written", NB, NB, "alice")
        g.manual_score = 1.5
        gb.db.commit()
    before = {k: v for k, v in rows["alice"].cells.items()}
    again = autograde.autograde(ws, limits=LIMITS, students={"alice"},
                                settings=autograde.Settings(workers=1, force=True))
    assert [(r.student_id, r.status) for r in again] == [("alice", "graded")]   # it did regrade
    with Gradebook(db) as gb:
        assert gb.find_grade("q1_written", NB, NB, "alice").manual_score == 1.5
        sub = gb.find_submission(NB, "alice")
        after = {g.name: (g.score, g.max_score) for nb in sub.notebooks for g in nb.grades}
    for gid, (score, max_score) in before.items():
        if gid != "q1_written":
            assert after[gid] == (score, max_score)
    assert after["q1_written"][0] == 1.5


def test_probe_finds_the_jail_intact_and_its_thread_share(batch):
    """From inside its kernel the probe is not root, reaches no listener on the host's loopback,
    reads neither the course nor the gradebook, writes nowhere outside its folder; and torch,
    OpenMP, MKL and numba each run the kernel's share of the cores (2 workers here)."""
    rows, ws, p = batch
    report = probe.report(ws / "autograded" / "probe" / NB / f"{NB}.ipynb")
    assert report["violations"] == [], report
    assert report["seen"]["uid"] != 0 and "network" in report["seen"]
    assert p.listener.connections == 0
    assert all(t.exists() for t in p.targets["reads"]), "a read target is missing: the probe would prove nothing"
    assert p.written == []
    share = sandbox.threads_per_kernel(2)
    assert report["seen"]["threads"] == {k: share for k in ("torch", "torch_interop", "openmp", "mkl", "numba")}
    assert rows["probe"].autograded_score == rows["probe"].autograded_max > 0   # graded as usual


def _weakened(command):
    """The jail without its network namespace and without dropping root (for the test below)."""
    def weak(self, kernel_cmd):
        cmd = [a for a in command(self, kernel_cmd) if a != "--net"]
        for flag in ("--uid", "--gid"):
            cmd[cmd.index(flag) + 1] = "0"
        return cmd
    return weak


def test_a_weakened_jail_fails_the_probe(tmp_path, monkeypatch):
    """The probe can say no: the same jail without --net and without the privilege drop (root
    inside) is caught, from inside the kernel, on both counts."""
    ok, why = sandbox.available()
    if not ok:
        pytest.skip(f"no sandbox here: {why}")
    monkeypatch.setattr(sandbox.JailedKernelManager, "command", _weakened(sandbox.JailedKernelManager.command))
    listener = probe.Listener()
    ws = tmp_path / "ws"
    nb, targets = probe.build(paths.ROOT, ws.resolve(), tmp_path, listener.port)
    path = tmp_path / "subs" / "probe" / NB / f"{NB}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    try:
        grade.grade(tmp_path / "subs", tmp_path / "grades.csv", workspace=ws, limits=LIMITS,
                    settings=autograde.Settings(workers=1))
    finally:
        listener.close()
        probe.remove_written(targets)
    report = probe.report(ws / "autograded" / "probe" / NB / f"{NB}.ipynb")
    assert "runs as root" in report["violations"], report
    assert "connected to the host's loopback" in report["violations"], report
    assert listener.connections >= 1


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    ok, why = sandbox.available()
    if not ok and nbtools.in_ci():
        pytest.fail(f"CI must grade in the sandbox: {why}")
    if not ok:
        pytest.skip(f"no sandbox here: {why}")
    tmp = tmp_path_factory.mktemp("faults")
    subs, ws = tmp / "submissions", tmp / "ws"
    batch = {"alice": nbtools.submission(nbtools.release_nb(NB), nbtools.solution_answers(NB)), **corpus.build_faults()}
    for student, nb in batch.items():
        path = subs / student / NB / f"{NB}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(nbformat.writes(nb))
    rows = grade.grade(subs, tmp / "grades.csv", workspace=ws, limits=LIMITS, settings=autograde.Settings(workers=2))
    return {r.student_id: r for r in rows}, ws.resolve()


def _printed(ws, student, prefix):
    nb = nbformat.read(ws / "autograded" / student / NB / f"{NB}.ipynb", as_version=4)
    return [line for c in nb.cells for o in c.get("outputs", []) for line in str(o.get("text", "")).splitlines()
            if line.startswith(prefix)]


def test_faults_fail_with_their_reasons_and_the_honest_one_keeps_its_score(faults):
    rows, ws = faults
    assert set(rows) == {"alice", *(f"h_{k}" for k in corpus.FAULTS)}
    full = sum(_test_points().values())
    assert rows["alice"].autograded_score == full == rows["alice"].autograded_max and rows["alice"].flags == []
    for student in rows:
        if student != "alice":
            assert rows[student].status == "failed" and rows[student].autograded_score == 0, rows[student]
    disk_mib = LIMITS.disk_bytes // 2**20
    bomb = rows["h_disk_bomb"]
    assert bomb.reason == f"the submission wrote more than {disk_mib} MiB into its folder (the disk limit)", bomb.reason
    # it caught the error: the grader saw the full folder itself; the cap stopped it, not 4 GiB later
    [line] = _printed(ws, "h_disk_bomb", "DISK-BOMB")
    assert "No space left on device" in line, line
    assert int(re.search(r"after (\d+) MiB", line).group(1)) <= disk_mib, line
    trace = rows["h_trace_function"]
    assert trace.reason == ("the kernel stopped answering the grader before test_scaled_dot_product_attention "
                            "(a trace function or a blocked interpreter: sys.settrace?)"), trace.reason
    assert any(f"did not answer the grading guard before test_scaled_dot_product_attention within "
               f"{runner.GUARD_SECONDS} s" in f for f in trace.flags), trace.flags
    for student in rows:   # the submission's doing, not the grader's: not graded again next run
        assert results.load_one(ws, student, NB).retry is False


def test_faults_leave_nothing_behind(faults):
    """No run folder is left (the kernel's sockets, the submission's folder), and no mount: the
    submission's folder was a tmpfs of the jail's own namespace, gone with its kernel."""
    _, ws = faults
    assert list((ws / "run").iterdir()) == []
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    assert not [m for m in mounts if m.startswith(str(ws))], mounts
