"""Does anything students receive contain an answer? A check by runs of lines.

An answer is a region of an instructor notebook between `### BEGIN SOLUTION` and
`### END SOLUTION` (code or a model answer in markdown) or between `### BEGIN HIDDEN TESTS` and
`### END HIDDEN TESTS`. A file leaks a region when it holds a run of the region's significant
lines: the rule (what counts as significant, how long a run is) is `autograder.contract`'s;
this module reads the instructor notebooks for their regions and scans files for them.

Used by `python -m autograder bundle` (it refuses to write a leaking student edition) and by
the tests, over the student edition and over `archlab/` itself.
"""

from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder import contract, paths
from autograder.course import build


@dataclass
class Region:
    assignment: str
    cell: str          # grade id or cell id
    kind: str          # "SOLUTION" or "HIDDEN TESTS"
    runs: set


def answer_regions(assignments=None):
    """The answer regions of the instructor notebooks (built from their jupytext sources)."""
    out = []
    for a in assignments or paths.present_assignments():
        nb = build.notebook_from_source(paths.SOLUTIONS / a / f"{a}.py")
        for c in nb.cells:
            for kind, lines in contract.regions(c.source):
                out.append(Region(a, c.id, kind, contract.runs(lines, c.cell_type == "markdown")))
    return out


def file_runs(path):
    """Runs of a .py file (its lines) or an .ipynb file (each cell's lines, code and markdown)."""
    path = Path(path)
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        found = set()
        for c in nb.cells:
            lines = c.source.splitlines()
            found |= contract.runs(lines) | contract.runs(lines, markdown=True)
        return found
    lines = path.read_text(errors="replace").splitlines()
    return contract.runs(lines) | contract.runs(lines, markdown=True)


@dataclass
class Leak:
    file: str
    region: Region
    lines: tuple

    def __str__(self):
        shown = " / ".join(self.lines)
        return (f"{self.file}: lines of {self.region.assignment}/{self.region.cell} "
                f"({self.region.kind.lower()}): {shown[:200]}")


def find(files, regions=None):
    """Leaks of any answer region into any of `files`; an empty list when there is none."""
    regions = answer_regions() if regions is None else regions
    leaks = []
    for f in files:
        have = file_runs(f)
        for r in regions:
            for run in sorted(r.runs & have):
                leaks.append(Leak(str(f), r, run))
                break
    return leaks


def files_under(folder, suffixes=(".py", ".ipynb")):
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in suffixes
                  and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts)


def forbidden_text(files):
    """(file, marker) for every file that holds a hidden-test marker, a rubric or a model answer
    (contract.INSTRUCTOR_ONLY)."""
    hits = []
    for f in files:
        hits += [(str(f), m) for m in contract.instructor_only(Path(f).read_text(errors="replace"))]
    return hits
