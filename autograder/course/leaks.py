"""Does anything students receive contain an answer? A check by runs of lines.

An answer is a region of an instructor notebook between `### BEGIN SOLUTION` and
`### END SOLUTION` (code or a model answer in markdown) or between `### BEGIN HIDDEN TESTS` and
`### END HIDDEN TESTS`. A file leaks a region when three consecutive *significant* lines of the
region appear, consecutively, in the file. Significant means: whitespace folded, comments and
trailing comments dropped, blank lines and lines of fewer than `MIN_CHARS` characters dropped
(`else:`, `return y`, a closing bracket). Three lines are enough to carry an idea and rare
enough by chance; one or two shared lines (an import, a signature) are not a leak.

Used by `python -m autograder bundle` (it refuses to write a leaking student edition) and by
the tests, over the student edition and over `archlab/` itself.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.course import build
from autograder import paths

MIN_CHARS = 10
RUN = 3
REGION = re.compile(r"^[ \t]*(?:# )?### BEGIN (SOLUTION|HIDDEN TESTS)[ \t]*\n(.*?)^[ \t]*(?:# )?### END \1",
                    re.M | re.S)


def _drop_comment(s):
    """s without a trailing `# ...` comment ('#' inside a one-line string literal is kept)."""
    quote = None
    for i, ch in enumerate(s):
        if quote:
            if ch == quote and s[i - 1] != "\\":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return s[:i]
    return s


def significant(line):
    """The line as compared (whitespace folded, comment dropped), or None if it does not count."""
    s = " ".join(_drop_comment(line).split())
    return s if len(s) >= MIN_CHARS else None


def markdown_line(line):
    """A markdown line of a model answer, as compared: its text is the content, not a comment."""
    s = " ".join(line.split())
    return s if len(s) >= MIN_CHARS else None


def runs(lines, markdown=False):
    """Every run of RUN consecutive significant lines, as tuples."""
    keep = [k for k in ((markdown_line if markdown else significant)(l) for l in lines) if k]
    return {tuple(keep[i:i + RUN]) for i in range(len(keep) - RUN + 1)}


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
            for m in REGION.finditer(c.source):
                out.append(Region(a, c.id, m.group(1), runs(m.group(2).splitlines(), c.cell_type == "markdown")))
    return out


def file_runs(path):
    """Runs of a .py file (its lines) or an .ipynb file (each cell's lines, code and markdown)."""
    path = Path(path)
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        found = set()
        for c in nb.cells:
            lines = c.source.splitlines()
            found |= runs(lines) | runs(lines, markdown=True)
        return found
    lines = path.read_text(errors="replace").splitlines()
    return runs(lines) | runs(lines, markdown=True)


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


# Words that only the instructor's version of a notebook holds.
FORBIDDEN_TEXT = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION",
                  "**Rubric", "**Model answer")


def forbidden_text(files):
    """(file, marker) for every file that holds a hidden-test marker, a rubric or a model answer."""
    hits = []
    for f in files:
        text = Path(f).read_text(errors="replace")
        hits += [(str(f), m) for m in FORBIDDEN_TEXT if m in text]
    return hits
