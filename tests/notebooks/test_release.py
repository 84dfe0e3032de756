"""Generated notebooks are in sync and clean.

solutions/<id>/<id>.ipynb is generated from its jupytext .py; notebooks/<id>/<id>.ipynb is what
nbgrader generates from it. Both are regenerated here and compared with what is committed.
"""

import json
import re
import subprocess
import sys

import pytest

import nbtools
from autograder import contract, paths
from autograder.course import build, release

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
    found = contract.instructor_only(json.dumps(rel))
    assert not found, f"notebooks/{assignment} contains {found}"
    # no significant line of any solution region survives in the release's cell (unless the
    # instructor's cell has it outside the region too)
    for gid in nbtools.solution_answers(assignment):
        orig = nbtools.cell(sol, gid).source
        region = contract.significant_lines(line for kind, lines in contract.regions(orig)
                                            if kind == contract.SOLUTION for line in lines)
        given = contract.significant_lines(contract.without_solutions(orig).splitlines())
        released = contract.significant_lines(nbtools.cell(rel, gid).source.splitlines())
        leaked = sorted((region - given) & released)
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


@pytest.mark.parametrize("marker", ["### BEGIN HIDEN TESTS", "### Begin Hidden Tests", "## BEGIN HIDDEN TESTS",
                                    "### BEGIN SOLUTIONS"])
def test_a_misspelt_marker_stops_the_build(marker, tmp_path):
    """A misspelt marker would publish hidden tests or a solution: the build refuses it, naming the line."""
    a = IDS[0]
    src = (paths.SOLUTIONS / a / f"{a}.py").read_text()
    canonical = contract.BEGIN_SOLUTION if "SOLUTION" in marker else contract.BEGIN_HIDDEN_TESTS
    bad = tmp_path / f"{a}.py"
    bad.write_text(src.replace(canonical, marker, 1))
    with pytest.raises(ValueError, match="looks like an nbgrader marker|without its BEGIN|never closed"):
        build.notebook_from_source(bad)


@pytest.mark.parametrize("assignment", IDS)
def test_no_hidden_test_line_reaches_the_student_notebook(assignment):
    """By content, not by marker strings: the release's test cell is the instructor's test cell
    without its hidden region, and no run of hidden-test lines appears anywhere in the release."""
    sol, rel = nbtools.solution_nb(assignment), nbtools.release_nb(assignment)
    for c in sol.cells:
        if contract.is_test(c):
            gid = contract.grade_id(c)
            released = nbtools.cell(rel, gid).source
            assert released.rstrip() == contract.visible_part(c.source).rstrip(), \
                f"{assignment}/{gid}: the student's test cell is not the visible part of the instructor's"
            hidden = contract.significant_lines(contract.hidden_lines(c.source))
            visible = contract.significant_lines(contract.visible_part(c.source).splitlines())
            leaked = sorted((hidden - visible) & contract.significant_lines(released.splitlines()))
            assert not leaked, f"{assignment}/{gid}: hidden test lines in the release: {leaked[:3]}"
    from autograder.course import leaks
    hidden_regions = [r for r in leaks.answer_regions([assignment]) if r.kind == contract.HIDDEN_TESTS]
    found = leaks.find([paths.NOTEBOOKS / assignment / f"{assignment}.ipynb"], hidden_regions)
    assert not found, "\n".join(map(str, found[:5]))


def _hidden_answers(assignment):
    """{grade_id: [literal values the hidden test of a checkpoint question compares with]}."""
    import ast
    out = {}
    for c in nbtools.solution_nb(assignment).cells:
        gid = contract.grade_id(c) or ""
        if not gid.startswith("test_q") or c.cell_type != "code":
            continue
        for kind, lines in contract.regions(c.source):
            if kind != contract.HIDDEN_TESTS:
                continue
            for node in ast.walk(ast.parse("\n".join(lines))):
                if isinstance(node, ast.Compare):
                    for side in [node.left, *node.comparators]:
                        for leaf in ast.walk(side):
                            if isinstance(leaf, ast.Constant) and isinstance(leaf.value, (str, int, float)):
                                out.setdefault(gid, []).append(leaf.value)
    return out


def test_choice_keys_are_spread_over_the_letters():
    """No letter is the key of more than 40 % of the course's A-D questions."""
    keys = [v for a in IDS for values in _hidden_answers(a).values() for v in values
            if isinstance(v, str) and len(v) == 1 and v in "ABCD"]
    if len(keys) < 5:
        pytest.skip("too few choice questions to judge a spread")
    from collections import Counter
    letter, n = Counter(keys).most_common(1)[0]
    assert n / len(keys) <= 0.4, f"{letter!r} is the key of {n} of {len(keys)} questions: {Counter(keys)}"


def _number_forms(value):
    """How a hidden numeric answer could be written in visible text."""
    forms = {repr(value), f"{value:,}" if isinstance(value, int) else f"{value:g}"}
    if isinstance(value, float):
        forms |= {f"{value:.1f}", f"{value:.2f}"}
    return forms


@pytest.mark.parametrize("assignment", IDS)
def test_no_visible_text_holds_a_hidden_answer(assignment):
    """A checkpoint question's numeric answer (one that is not a small count) appears nowhere a
    student reads: markdown, code, test cells' visible parts or docstrings of the release."""
    rel = nbtools.release_nb(assignment)
    text = "\n".join(c.source for c in rel.cells)
    for gid, values in _hidden_answers(assignment).items():
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or abs(v) < 10:
                continue
            shown = [f for f in _number_forms(v) if re.search(rf"(?<![\d.,]){re.escape(f)}(?![\d])", text)]
            assert not shown, \
                f"{assignment}: the hidden answer {v!r} of {gid} is written in the student notebook as {shown}"
