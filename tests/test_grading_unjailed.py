"""Where no jail can be made (not root, no namespaces), the grader still grades, in a plain
kernel in the submission's folder, and the export says the submission was not isolated."""

import nbformat
import pytest

import nbtools
from autograder import grade, paths

NB = "01_self_attention"


def test_unjailed_grading_gives_the_same_scores_and_says_so(tmp_path):
    if NB not in paths.present_assignments():
        pytest.skip("needs notebook 01")
    rel = nbtools.release_nb(NB)
    path = tmp_path / "subs" / "alice" / NB / f"{NB}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nbtools.submission(rel, nbtools.solution_answers(NB)), path)
    rows = grade.grade(tmp_path / "subs", tmp_path / "grades.csv", workspace=tmp_path / "ws", isolate=False)
    (r,) = rows
    assert r.isolated is False
    assert r.autograded_max > 0 and r.autograded_score == r.autograded_max, r.cells
    assert "False" in (tmp_path / "grades.csv").read_text().splitlines()[1]
