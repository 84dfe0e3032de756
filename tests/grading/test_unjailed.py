"""Where no jail can be made (not root, no namespaces), the grader still grades, in a plain
kernel in the submission's folder, and the export says the submission was not isolated.

The same batch holds the isolation probe (tests/hostile/probe.py): without the jail every one
of its checks must fire, which shows that each of them can fail; and it reads the thread limit
given with `threads_per_kernel` (all the cores, where the default share of two workers is half).
And a submission that kills the worker process grading it (only possible without the jail):
the local pool survives it, grades the others, and fails that one after a bounded number of tries.
"""

import os

import nbformat
import pytest

import nbtools
from autograder import grade, paths
from autograder.grading import autograde, sandbox
from hostile import probe

NB = "01_self_attention"
pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


def test_unjailed_grading_gives_the_same_scores_and_says_so(tmp_path):
    if NB not in paths.present_assignments():
        pytest.skip("needs notebook 01")
    rel = nbtools.release_nb(NB)
    listener = probe.Listener()
    ws = tmp_path / "ws"
    probe_nb, targets = probe.build(paths.ROOT, ws.resolve(), tmp_path, listener.port)
    batch = {"alice": nbtools.submission(rel, nbtools.solution_answers(NB)), "probe": probe_nb,
             "killer": probe.worker_killer(os.getpid())}
    for student, nb in batch.items():
        path = tmp_path / "subs" / student / NB / f"{NB}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    threads = sandbox.usable_cores()      # OpenMP caps a request above the cores at the cores
    assert threads != sandbox.threads_per_kernel(2) or threads == 1
    try:
        rows = grade.grade(tmp_path / "subs", tmp_path / "grades.csv", workspace=ws, isolate=False,
                           settings=autograde.Settings(workers=2, threads_per_kernel=threads, max_tries=2))
        written = [p for p in targets["writes"] if p.exists()]
    finally:
        listener.close()
        probe.remove_written(targets)
    by_student = {row.student_id: row for row in rows}
    killer = by_student["killer"]
    assert killer.status == "failed" and "worker died 2 times" in killer.reason, killer.reason
    r = by_student["alice"]
    assert r.isolated is False
    assert r.autograded_max > 0 and r.autograded_score == r.autograded_max, r.cells
    assert "False" in (tmp_path / "grades.csv").read_text().splitlines()[1]
    # unjailed, nothing caps a submission's folder; it is removed after grading all the same (the
    # killer's is left: it kills the worker that would remove it)
    assert sorted(p.name for p in (ws / "run").iterdir()) == [f"killer--{NB}"]

    report = probe.report(ws / "autograded" / "probe" / NB / f"{NB}.ipynb")
    expected = [f"read {p}" for p in targets["reads"]] + [f"wrote {p}" for p in targets["writes"]]
    expected.append("connected to the host's loopback")
    if report["seen"]["uid"] == 0:
        expected.append("runs as root")
    assert sorted(report["violations"]) == sorted(expected)
    assert listener.connections >= 1 and written == targets["writes"]
    if threads > 1:   # on one core the override and the default are the same: nothing to tell apart
        assert report["seen"]["threads"] == {k: threads for k in ("torch", "torch_interop", "openmp", "mkl", "numba")}
