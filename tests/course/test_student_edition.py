"""What students receive holds no answers, and it is complete.

The student edition (`python -m autograder bundle`) is built, zipped and unpacked in a temporary
folder OUTSIDE the repository, set up with its own README command (`make setup`, the set-up half
of `make lab`), and every student notebook is executed with papermill in the edition's own
environment: everything runs except the exercises, which raise NotImplementedError (and the
cells that need them fail with it) — no import error, no missing file. Then the solution of every
answer cell is pasted into the unpacked notebooks and they are graded by the course's grader:
full automatic marks. The leak check runs over the edition and over archlab/ itself.
"""

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import nbformat
import pytest

import browser_helpers as bh
import nbtools
from autograder import contract, grade, paths
from autograder.course import bundle, leaks
from autograder.errors import CourseError
from autograder.grading import autograde

IDS = paths.present_assignments()
# What an unanswered notebook may show outside its test cells: the stubs' NotImplementedError
# (raised by an answer cell, or by a later cell that calls the exercise). Never allowed anywhere:
# a missing module or file, which would mean the edition is incomplete.
STUB_ERRORS = ("NotImplementedError",)
MISSING = ("ModuleNotFoundError", "ImportError", "FileNotFoundError")


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """The edition as a student unpacks it: the zip, extracted into a fresh folder."""
    work = tmp_path_factory.mktemp("edition")
    assert not work.resolve().is_relative_to(paths.ROOT), "the edition must be tested outside the repository"
    built = bundle.build(work / "built" / "archlab-workbook", zip=True)
    with zipfile.ZipFile(built.with_suffix(".zip")) as z:
        z.extractall(work / "unpacked")
    root = work / "unpacked" / "archlab-workbook"
    for script in root.glob("scripts/*.sh"):    # zipfile.extractall drops the mode bits
        script.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def installed(edition):
    """`make setup` in the edition: its own virtual environment, from its own pyproject.toml."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "JUPYTER_", "IPYTHONDIR"))}
    proc = subprocess.run(["make", "setup"], cwd=edition, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    python = edition / ".venv" / "bin" / "python"
    where = subprocess.run([str(python), "-c", "import archlab; print(archlab.__file__)"], capture_output=True,
                           text=True, cwd="/")
    assert Path(where.stdout.strip()).resolve().is_relative_to(edition.resolve()), where.stdout + where.stderr
    return python


def test_edition_holds_what_a_student_needs_and_nothing_of_the_instructor(edition):
    for a in IDS:
        assert (edition / "notebooks" / a / f"{a}.ipynb").read_bytes() == \
            (paths.NOTEBOOKS / a / f"{a}.ipynb").read_bytes(), f"{a}: not the committed student release"
    for need in ("README.md", "Makefile", "pyproject.toml", "environment.yml", "scripts/lab.sh",
                 "scripts/course.mk", "archlab/__init__.py", "archlab/checks.py"):
        assert (edition / need).is_file(), f"the edition lacks {need}"
    for fig in paths.ROOT.glob("figs/*.png"):
        assert (edition / "figs" / fig.name).is_file(), f"the edition lacks figs/{fig.name}"
    for absent in ("solutions", "autograder", "tests", "archref", ".git", "bench/run.py"):
        assert not (edition / absent).exists(), f"{absent} must not be in the student edition"
    readme = (edition / "README.md").read_text()
    assert "make lab" in readme and "hidden tests" in readme and "Submit" in readme


def test_edition_pins_are_the_courses(edition):
    course = bundle.pins()
    text = (edition / "pyproject.toml").read_text() + (edition / "environment.yml").read_text()
    for name in bundle.STUDENT_PACKAGES:
        assert text.count(course[name]) == 2, f"{course[name]} must be pinned in both student files"
    for instructor_only in ("papermill", "jupytext", "pytest"):
        assert instructor_only not in text


def test_no_answer_reaches_students(edition):
    files = leaks.files_under(edition)
    assert any(f.suffix == ".ipynb" for f in files) and any(f.suffix == ".py" for f in files)
    found = leaks.find(files)
    assert not found, "answers in the student edition:\n" + "\n".join(map(str, found[:10]))
    assert not leaks.forbidden_text(files)


def test_archlab_itself_holds_no_answer():
    found = leaks.find(leaks.files_under(paths.ROOT / "archlab"))
    assert not found, "archlab implements graded exercises:\n" + "\n".join(map(str, found[:10]))


def test_the_leak_check_finds_a_planted_answer(tmp_path):
    """The check itself can fail: a helper that copies an answer region is found."""
    region = next(r for r in leaks.answer_regions() if r.kind == contract.SOLUTION and len(r.runs) > 2)
    lines = sorted(region.runs)[0]
    planted = tmp_path / "helper.py"
    planted.write_text("def f(x):\n" + "".join(f"    {line}  # a comment\n" for line in lines))
    assert [x.region.cell for x in leaks.find([planted], [region])] == [region.cell]
    with pytest.raises(CourseError, match="would contain answers"):
        bundle_with_plant(tmp_path, lines)
    assert not (tmp_path / "out").exists(), "a refused edition must leave nothing behind"


def bundle_with_plant(tmp_path, lines):
    """bundle.build from a copy of archlab with an answer planted in it (the real one is untouched)."""
    staged = tmp_path / "archlab"
    shutil.copytree(paths.ROOT / "archlab", staged, ignore=shutil.ignore_patterns("__pycache__"))
    (staged / "planted.py").write_text("\n".join(lines) + "\n")
    return bundle.build(tmp_path / "out", archlab=staged)


def _kernelspec(python, data_dir):
    """A kernel spec that runs the edition's own Python, so papermill executes in its environment."""
    spec = data_dir / "kernels" / "student-edition"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "student edition", "language": "python"}))
    return "student-edition"


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("assignment", IDS)
def test_every_student_notebook_runs_but_for_the_exercises(assignment, installed, edition, tmp_path, monkeypatch):
    import papermill
    data = tmp_path / "jupyter-data"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data))
    monkeypatch.setenv("JUPYTER_PATH", str(data))
    kernel = _kernelspec(installed, data)
    src = edition / "notebooks" / assignment / f"{assignment}.ipynb"
    out = tmp_path / f"{assignment}.ipynb"
    try:
        papermill.execute_notebook(str(src), str(out), kernel_name=kernel, cwd=str(src.parent), allow_errors=True,
                                   progress_bar=False, execution_timeout=600, start_timeout=120)
    except papermill.PapermillExecutionError:
        pass    # raised after the run when any cell failed; the cells are judged below
    nb = nbformat.read(out, as_version=4)
    release = nbtools.release_nb(assignment)
    tests = {contract.grade_id(c) for c in release.cells if contract.is_test(c)}
    unexpected, stubs_hit = [], 0
    for c in nb.cells:
        gid = contract.grade_id(c)
        for o in c.get("outputs", []):
            if o.output_type != "error":
                continue
            where = f"{gid or c.id}: {o.ename}: {o.evalue[:200]}"
            if o.ename in MISSING:
                unexpected.append(where)                  # anywhere: the edition lacks something
            elif gid in tests:
                continue                                  # a test of an unanswered exercise fails
            elif o.ename in STUB_ERRORS:
                stubs_hit += 1
            else:
                unexpected.append(where)
    assert not unexpected, f"{assignment} in the student edition:\n" + "\n".join(unexpected)
    assert stubs_hit, f"{assignment}: no cell raised NotImplementedError: were the stubs replaced by answers?"


@pytest.fixture(scope="module")
def graded_pasted(edition, autograde_batch, tmp_path_factory):
    """The unpacked notebooks with every answer cell's solution pasted in, through the grader.

    A pasted notebook that is byte for byte alice's submission in the session's batch (conftest:
    the committed release with the same solutions pasted, graded with the same settings) has
    been through the grader already and takes her result; any other is graded here."""
    batch_rows, _, batch_subs, _ = autograde_batch
    tmp = tmp_path_factory.mktemp("pasted")
    subs = tmp / "submissions"
    graded = {}
    for a in IDS:
        nb = nbformat.read(edition / "notebooks" / a / f"{a}.ipynb", as_version=4)
        path = subs / "student" / a / f"{a}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nbtools.submission(nb, nbtools.solution_answers(a)), path)
        if path.read_bytes() == (batch_subs / "alice" / a / f"{a}.ipynb").read_bytes():
            graded[a] = batch_rows["alice", a]
            shutil.rmtree(path.parent)
    if len(graded) < len(IDS):
        rows = grade.grade(subs, tmp / "grades.csv", workspace=tmp / "ws", settings=autograde.Settings(workers=2))
        graded.update({r.assignment: r for r in rows})
    return graded


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("assignment", IDS)
def test_pasted_solutions_get_full_automatic_marks(graded_pasted, assignment):
    r = graded_pasted[assignment]
    assert r.status in ("graded", "needs manual grading"), r.reason
    assert r.autograded_max > 0 and r.autograded_score == r.autograded_max, \
        {k: v for k, v in r.cells.items() if v[0] != v[1]}


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="this checks the root case (as in CI and containers)")
def test_the_editions_make_lab_serves_its_notebooks(installed, edition, tmp_path):
    listing = bh.make_lab_contents(edition, log_path=tmp_path / "lab.log")
    assert set(IDS) <= {item["name"] for item in listing["content"]}, (tmp_path / "lab.log").read_text()[-2000:]
