"""Model solutions for after the deadline (`python -m autograder solutions`): the instructor
notebook executed, its solutions and model answers kept, its hidden tests and rubrics gone."""

import json
import shutil

import nbformat
import pytest

import nbtools
from autograder import contract, paths
from autograder.course import execute, leaks, model_solutions

NB = "01_self_attention"
pytestmark = pytest.mark.skipif(NB not in paths.present_assignments(), reason="needs notebook 01")


@pytest.fixture(scope="module")
def released(tmp_path_factory, solution_run):
    """model_solutions.make(NB): its papermill run (execute.execute(NB, QUICK=True)) is the
    session's run of that notebook, copied where make() asked for it, instead of a run of its own."""
    calls = []
    folder, seconds = solution_run(NB)        # run (or found) before execute.execute is replaced

    def session_run(assignment, out_dir=None, **parameters):
        calls.append((assignment, parameters))
        return shutil.copy(folder / f"{assignment}.ipynb", out_dir), seconds

    out = tmp_path_factory.mktemp("model_solutions")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(execute, "execute", session_run)
        path = model_solutions.make(NB, out)
    assert calls == [(NB, {"QUICK": True})], "make() must execute the notebook, QUICK"
    return nbformat.read(path, as_version=4)


@pytest.mark.notebooks
@pytest.mark.slow
def test_solutions_and_model_answers_are_kept_and_executed(released):
    text = json.dumps([c.source for c in released.cells])
    for gid, answer in nbtools.solution_answers(NB).items():
        if nbtools.cell(released, gid).cell_type == "code":
            assert answer.strip() in nbtools.cell(released, gid).source, f"{gid}: the solution code is missing"
    assert "**Model answer.**" in text
    assert any(c.cell_type == "code" and c.outputs for c in released.cells), "the notebook was not executed"
    errors = [o for c in released.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


@pytest.mark.notebooks
@pytest.mark.slow
def test_no_hidden_test_rubric_or_marker_survives(released, tmp_path):
    text = json.dumps([c.source for c in released.cells])
    found = [w for w in contract.instructor_only(text) if w != contract.MODEL_ANSWER_WORD]
    assert not found, f"the model solutions still hold {found}"
    path = tmp_path / "released.ipynb"
    nbformat.write(released, path)
    hidden = [r for r in leaks.answer_regions([NB]) if r.kind == contract.HIDDEN_TESTS]
    assert hidden and not leaks.find([path], hidden)


def test_the_cleaning_can_fail():
    """clean() is what removes them: a notebook it is not run on still holds them."""
    sol = nbtools.solution_nb(NB)
    assert "BEGIN HIDDEN TESTS" in json.dumps([c.source for c in sol.cells])
    cleaned = model_solutions.clean(nbtools.solution_nb(NB))
    assert "BEGIN HIDDEN TESTS" not in json.dumps([c.source for c in cleaned.cells])
