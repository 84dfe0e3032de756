"""The student edition: what an instructor hands out or publishes. No answers in it.

    python -m autograder bundle [--out DIR] [--zip]          (make student)

DIR (default build/student) receives:

    notebooks/<id>/<id>.ipynb    the student release of every notebook (as committed)
    archlab/                     the helper package (it implements no graded exercise)
    figs/*.png                   the figures the notebooks show
    bench/results/*.json, *.md   the measurements notebooks 02 and 05 quote
    README.md                    written for students: set up, open, visible tests, hand in
    pyproject.toml               archlab and the student's pinned dependencies (from ours)
    environment.yml              the same pins for conda
    Makefile, scripts/           `make lab`: set up, then open JupyterLab

Nothing of solutions/, autograder/, tests/, archref/, rubrics, model answers or hidden tests.
Before anything is written for good, the edition is checked by `autograder.course.leaks`: a file
holding three consecutive significant lines of any answer region, or a hidden-test marker,
a rubric or a model answer, stops the bundle with the evidence.
"""

import shutil
import tempfile
import tomllib
import zipfile
from pathlib import Path

import nbformat

from autograder import paths
from autograder.course import leaks
from autograder.errors import CourseError

# What a student needs to run the notebooks; the instructor's tools (nbgrader, papermill,
# jupytext, the hub, Dask) stay out. Versions come from our pyproject.toml.
STUDENT_PACKAGES = ("torch", "transformers", "numpy", "numba", "matplotlib", "ipywidgets", "tqdm",
                    "jupyterlab", "ipykernel")
# On a course JupyterHub the student environment also needs nbgrader's Assignments tab.
HUB_PACKAGES = ("nbgrader",)
DATA = [("figs", "*.png"), ("bench/results", "*.json"), ("bench/results", "*.md")]
DATA_EXCLUDE = ("grading",)     # instructor measurements of the grader itself
SCRIPTS = ("scripts/course.mk", "scripts/lab.sh")
TEMPLATES = Path(__file__).resolve().parent / "student"


def pins():
    """{package: 'package==version'} from the course's pyproject.toml."""
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    out = {}
    for spec in project["dependencies"]:
        name = spec.split("==")[0].split("[")[0].strip()
        out[name] = spec
    return out


def _requirements(names):
    have = pins()
    missing = [n for n in names if n not in have]
    if missing:
        raise CourseError(f"pyproject.toml has no pinned version of {', '.join(missing)}")
    return [have[n] for n in names]


def pyproject_text():
    deps = "".join(f'    "{r}",\n' for r in _requirements(STUDENT_PACKAGES))
    hub = ", ".join(f'"{r}"' for r in _requirements(HUB_PACKAGES))
    return f'''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "archlab"
version = "0.1.0"
description = "The architectures workbook, student edition: the helpers its notebooks import"
readme = "README.md"
requires-python = ">=3.11,<3.12"
# torch is pinned to a CPU build; on a CUDA machine install the CUDA build of the same version first.
dependencies = [
{deps}]

[project.optional-dependencies]
# on the course's JupyterHub: nbgrader's Assignments tab (fetch, submit, feedback)
hub = [{hub}]

[tool.setuptools]
packages = ["archlab", "archlab.widgets"]
'''


def environment_text():
    deps = "".join(f"      - {r}\n" for r in _requirements(STUDENT_PACKAGES))
    return f"""# conda: `conda env create -f environment.yml && conda activate archlab`, then
# `pip install -e . --no-deps` in this folder. The same pins as pyproject.toml.
name: archlab
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
{deps}"""


def _title(nb):
    first = nb.cells[0].source.splitlines()[0] if nb.cells else ""
    return first.lstrip("# ").strip()


def readme_text(assignments):
    rows = []
    for a in assignments:
        nb = nbformat.read(paths.NOTEBOOKS / a / f"{a}.ipynb", as_version=4)
        rows.append(f"| `notebooks/{a}/{a}.ipynb` | {_title(nb)} |")
    return (TEMPLATES / "README.md").read_text().replace("@NOTEBOOK_TABLE@", "\n".join(rows))


def write(out, assignments=None, archlab=None):
    """Write the student edition into the (new or emptied) folder `out`; return its files.

    `archlab` is the helper package's folder (default: the course's own)."""
    assignments = list(assignments or paths.present_assignments())
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for a in assignments:
        src = paths.NOTEBOOKS / a / f"{a}.ipynb"
        if not src.exists():
            raise CourseError(f"no student release of {a}: run `python -m autograder release {a}`")
        (out / "notebooks" / a).mkdir(parents=True)
        shutil.copy2(src, out / "notebooks" / a / src.name)
    shutil.copytree(archlab or paths.ROOT / "archlab", out / "archlab",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
    for folder, pattern in DATA:
        for f in sorted((paths.ROOT / folder).glob(pattern)):
            if not f.name.startswith(DATA_EXCLUDE):
                (out / folder).mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, out / folder / f.name)
    for s in SCRIPTS:
        (out / s).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(paths.ROOT / s, out / s)
    shutil.copy2(TEMPLATES / "Makefile", out / "Makefile")
    (out / "README.md").write_text(readme_text(assignments))
    (out / "pyproject.toml").write_text(pyproject_text())
    (out / "environment.yml").write_text(environment_text())
    (out / ".gitignore").write_text(".venv/\nbuild/\n__pycache__/\n.ipynb_checkpoints/\n*.egg-info/\n")
    return sorted(p for p in out.rglob("*") if p.is_file())


def check(folder):
    """Problems that make `folder` unfit to hand out (empty list when it holds no answer)."""
    files = leaks.files_under(folder)
    problems = [str(leak) for leak in leaks.find(files)]
    problems += [f"{f}: contains {marker!r}" for f, marker in leaks.forbidden_text(files)]
    for name in ("solutions", "autograder", "tests", "archref", ".git"):
        if (Path(folder) / name).exists():
            problems.append(f"{name}/ must not be in the student edition")
    return problems


def _zip(folder, zip_path):
    """A zip of folder, its files under one top-level folder of the same name, in sorted order."""
    folder = Path(folder)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(f"{folder.name}/{f.relative_to(folder).as_posix()}", date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if f.suffix == ".sh" else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, f.read_bytes())
    return zip_path


def build(out=None, zip=False, assignments=None, archlab=None):
    """Write and check the student edition at `out` (and `out`.zip); return the folder's path.

    The edition is assembled in a temporary folder next to `out` and moved into place only when
    the leak check finds nothing, so a failed check never leaves an edition behind.
    """
    out = Path(out or paths.BUILD / "student").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".bundle-") as tmp:
        staged = Path(tmp) / out.name
        write(staged, assignments, archlab)
        problems = check(staged)
        if problems:
            raise CourseError("the student edition would contain answers; nothing written:\n  "
                             + "\n  ".join(problems[:20]))
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)
    if zip:
        _zip(out, out.with_suffix(".zip"))
    return out
