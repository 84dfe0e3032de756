"""Model solutions to release once grading is done: the instructor notebook, executed, with its
solutions and explanations, without hidden tests or rubrics (instructors reuse those next term).

    python -m autograder solutions [ID ...] [--out DIR] [--full]     (make solutions)

For each notebook: papermill runs solutions/<id>/<id>.ipynb (QUICK unless --full) into a
temporary folder; then every hidden-test region is cut out of the test cells (and their outputs
cleared), the rubric paragraphs are cut out of the written answers (the model answers stay),
and the solution markers are removed so the code reads as plain code. The result is checked
by `autograder.course.leaks` against the hidden-test regions before it is written to
DIR/<id>/<id>.ipynb (default build/model_solutions).
"""

import tempfile
from pathlib import Path

import nbformat

from autograder import contract, paths
from autograder.course import build, execute, leaks
from autograder.errors import CourseError


def clean(nb):
    """nb without hidden tests, rubrics or solution markers (in place); returns nb."""
    for c in nb.cells:
        if contract.is_test(c) and contract.HIDDEN_REGION.search(c.source):
            c.source = contract.visible_part(c.source).rstrip() + "\n"
            c.outputs = []
        if c.cell_type == "markdown":
            c.source = contract.cut_rubric(c.source)
        c.source = contract.strip_solution_markers(c.source).rstrip()
    return nb


def make(assignment, out_dir, full=False):
    """Execute, clean and check one notebook; return the path written."""
    paths.BUILD.mkdir(exist_ok=True)     # a fresh checkout has no build/ yet
    with tempfile.TemporaryDirectory(dir=paths.BUILD) as tmp:
        executed, _ = execute.execute(assignment, out_dir=Path(tmp), QUICK=not full)
        nb = clean(nbformat.read(executed, as_version=4))
        staged = Path(tmp) / f"{assignment}.clean.ipynb"
        staged.write_text(build.dumps(nb))
        hidden = [r for r in leaks.answer_regions([assignment]) if r.kind == contract.HIDDEN_TESTS]
        problems = [str(x) for x in leaks.find([staged], hidden)]
        problems += [f"contains {m!r}" for _, m in leaks.forbidden_text([staged])
                     if m != contract.MODEL_ANSWER_WORD]     # the model answers are what this releases
        if problems:
            raise CourseError(f"model solutions of {assignment} would reveal hidden tests or rubrics:\n  "
                             + "\n  ".join(problems[:10]))
        target = Path(out_dir) / assignment / f"{assignment}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(staged.read_text())
    return target
