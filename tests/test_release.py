"""Generated notebooks are in sync and clean.

solutions/<id>/<id>.ipynb is generated from its jupytext .py; notebooks/<id>/<id>.ipynb is what
nbgrader generates from it. Both are regenerated here and compared with what is committed.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import nbtools
from autograder import build, paths, release

IDS = paths.present_assignments()


@pytest.mark.parametrize("assignment", IDS)
def test_instructor_notebook_matches_its_source(assignment, tmp_path):
    regenerated = build.build(assignment, out_dir=tmp_path).read_text()
    committed = (paths.SOLUTIONS / assignment / f"{assignment}.ipynb").read_text()
    assert regenerated == committed, f"run `make release`: solutions/{assignment}/{assignment}.ipynb is stale"


@pytest.mark.parametrize("assignment", IDS)
def test_student_notebook_is_what_nbgrader_generates(assignment, tmp_path):
    out = release.generate(assignment, tmp_path / "release", tmp_path / "ws")
    committed = paths.NOTEBOOKS / assignment / f"{assignment}.ipynb"
    assert out.read_text() == committed.read_text(), f"run `make release`: notebooks/{assignment} is stale"
    # nothing but the notebook is released (the jupytext source holds the solutions)
    assert sorted(p.name for p in out.parent.iterdir()) == [f"{assignment}.ipynb"]


@pytest.mark.parametrize("assignment", IDS)
def test_release_holds_no_solutions_hidden_tests_or_outputs(assignment):
    sol, rel = nbtools.solution_nb(assignment), nbtools.release_nb(assignment)
    text = json.dumps(rel)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"notebooks/{assignment} contains {marker}"
    # no line of any solution region survives in the release
    for gid, src in nbtools.solution_answers(assignment).items():
        region = [l.strip() for l in src.splitlines() if l.strip()]
        rcell = nbtools.cell(rel, gid).source
        orig = nbtools.cell(sol, gid).source
        given = {l.strip() for l in nbtools.SOLUTION_REGION.sub("", orig).splitlines()}
        leaked = [l for l in region if l not in given and l in rcell.splitlines() and len(l) > 12]
        assert not leaked, f"{assignment}/{gid}: solution lines in the release: {leaked[:3]}"
    for nb, label in ((sol, "solutions"), (rel, "notebooks")):
        for c in nb.cells:
            if c.cell_type == "code":
                assert not c.outputs and c.execution_count is None, f"{label}/{assignment} has stored outputs"


@pytest.mark.parametrize("assignment", IDS)
def test_release_opens_cleanly(assignment):
    rel = nbtools.release_nb(assignment)
    assert rel.metadata.kernelspec.name == "python3"
    first = rel.cells[0].source
    assert "How to start" in first and "How to check your work" in first and "hidden" in first.lower()
    params = [c for c in rel.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for name in ("DEVICE", "QUICK", "SEED"):
        assert f"{name} =" in params[0].source


@pytest.mark.parametrize("assignment", IDS)
def test_course_contract(assignment):
    """shared/tools/nbcheck.py: names, parameters cell, release hygiene, questions verbatim."""
    tool = paths.ROOT.parent / "shared" / "tools" / "nbcheck.py"
    if not tool.exists():
        pytest.skip("shared/tools/nbcheck.py is not beside this checkout")
    names = [g for g in nbtools.answer_ids(nbtools.solution_nb(assignment)) if not g.startswith("q")]
    r = subprocess.run([sys.executable, str(tool), assignment, *names], cwd=paths.ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
