"""Instructor notebooks from their jupytext sources: solutions/<id>/<id>.py -> <id>.ipynb.

The .py (jupytext "percent" format) is what instructors edit and review; the .ipynb is
generated from it, deterministically (cell ids from the grade id or the position, no outputs,
no jupytext bookkeeping), so a test can regenerate both and compare them byte for byte.
"""

import json

import jupytext
import nbformat

from . import paths

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def notebook_from_source(source_path):
    """Read a jupytext .py file and return the notebook as a normalised nbformat node."""
    nb = jupytext.read(source_path, fmt="py:percent")
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    seen = set()
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("lines_to_next_cell", None)
        cell.metadata.pop("cell_marker", None)
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        cell.id = grade_id if grade_id else f"cell-{i:03d}"
        if cell.id in seen:
            raise ValueError(f"{source_path}: two cells have the id {cell.id!r}")
        seen.add(cell.id)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
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


def main(args):
    for a in args.assignments or paths.present_assignments():
        print("built", build(paths.check_assignment(a)).relative_to(paths.ROOT))
