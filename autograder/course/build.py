"""Instructor notebooks from their jupytext sources: solutions/<id>/<id>.py -> <id>.ipynb.

The .py (jupytext "percent" format) is what instructors edit and review; the .ipynb is
generated from it, deterministically (cell ids from the grade id or the position, no outputs,
no jupytext bookkeeping), so a test can regenerate both and compare them byte for byte.
"""

import json

import jupytext
import nbformat

from autograder import contract, paths
from autograder.errors import MarkerError


def check_markers(nb, where="notebook"):
    """Raise MarkerError (a ValueError) unless every solution/hidden-test marker is exact, paired and where it belongs:
    every graded test cell holds one hidden-test region, every answer cell one solution region."""
    # nbgrader acts on the markers only when they are spelled exactly so; a misspelt one would
    # publish a hidden test or a solution in the student notebook, so the build refuses it.
    for cell in nb.cells:
        gid = contract.grade_id(cell) or cell.id
        found = []
        for n, line in enumerate(cell.source.splitlines(), 1):
            text = line.strip()
            if cell.cell_type == "markdown":
                text = text.lstrip("# ").strip() if text.startswith("# ###") else text
            if text in contract.MARKERS:
                found.append(text)
            elif contract.MARKER_LIKE.search(line):
                raise MarkerError(f"{where}: cell {gid!r} line {n}: {line.strip()!r} looks like an nbgrader marker "
                                 f"but is not one of {', '.join(contract.MARKERS)}")
        open_ = None
        for m in found:
            kind = m.split(" ", 2)[2]
            if m in (contract.BEGIN_SOLUTION, contract.BEGIN_HIDDEN_TESTS):
                if open_:
                    raise MarkerError(f"{where}: cell {gid!r}: {m!r} inside an open {open_} region")
                open_ = kind
            elif open_ != kind:
                raise MarkerError(f"{where}: cell {gid!r}: {m!r} without its BEGIN")
            else:
                open_ = None
        if open_:
            raise MarkerError(f"{where}: cell {gid!r}: the {open_} region is never closed")
        if contract.is_test(cell) and contract.BEGIN_HIDDEN_TESTS not in found:
            raise MarkerError(f"{where}: graded test cell {gid!r} has no hidden tests")
        if contract.has_solution(cell) and contract.BEGIN_SOLUTION not in found:
            raise MarkerError(f"{where}: answer cell {gid!r} has no solution region")

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def notebook_from_source(source_path):
    """Read a jupytext .py file and return the notebook as a normalised nbformat node."""
    nb = jupytext.read(source_path, fmt="py:percent")
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    seen = set()
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("lines_to_next_cell", None)
        cell.metadata.pop("cell_marker", None)
        grade_id = contract.grade_id(cell)
        cell.id = grade_id if grade_id else f"cell-{i:03d}"
        if cell.id in seen:
            raise MarkerError(f"{source_path}: two cells have the id {cell.id!r}")
        seen.add(cell.id)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    check_markers(nb, str(source_path))
    return nb


def dumps(nb):
    """The one serialisation used for every committed notebook."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def build(assignment, out_dir=None):
    """Write solutions/<id>/<id>.ipynb (or into out_dir) from the .py source; return the path."""
    src = paths.SOLUTIONS / assignment / f"{assignment}.py"
    target = (out_dir or src.parent) / f"{assignment}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dumps(notebook_from_source(src)))
    return target
