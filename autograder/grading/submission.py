"""From a submitted file to the notebook the grader runs, with every sign of tampering recorded.

The truth is the course's own files, never the submission: graded test cells come from the
instructor notebook (hidden tests included), every nbgrader cell's metadata and every locked
cell's source from the student release. The student contributes only the sources of answer
cells and of ordinary cells. What differs from the truth is put back and reported as a flag,
with the evidence, for an instructor to review.
"""

import copy
import hashlib
from dataclasses import dataclass, field

import nbformat

from autograder import contract, paths
from autograder.grading import scan


@dataclass
class Prepared:
    notebook: object = None                  # what the kernel runs (None when the file is unusable)
    problem: str = ""                        # why it cannot be graded
    flags: list = field(default_factory=list)        # "what: evidence" strings
    test_ids: list = field(default_factory=list)     # graded test cells, in order
    given_names: dict = field(default_factory=dict)  # locked cell grade_id -> names it defines
    assignment: str = ""                     # what it is a submission of (named mistakes carry it)




def truth_files(assignment):
    """The course's truth for one assignment: the instructor notebook and the student release."""
    return (paths.SOLUTIONS / assignment / f"{assignment}.ipynb",
            paths.NOTEBOOKS / assignment / f"{assignment}.ipynb")


def truth(assignment):
    sol, rel = truth_files(assignment)
    return nbformat.read(sol, as_version=4), nbformat.read(rel, as_version=4)


def fingerprint(assignment):
    """sha256 of the course files a submission of `assignment` is graded against: a result
    graded against other files (a fixed test, another machine's checkout) is not current."""
    h = hashlib.sha256()
    for f in truth_files(assignment):
        h.update(f.read_bytes())
    return h.hexdigest()


def prepare(source, assignment):
    """Read and check a submission (a path, or the file's bytes); return Prepared (notebook None
    + problem if unusable)."""
    out = Prepared(assignment=assignment)
    try:
        if isinstance(source, bytes):
            nb = nbformat.reads(source.decode("utf-8"), as_version=4)
        else:
            nb = nbformat.read(source, as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # NotJSONError, ValidationError, UnicodeDecodeError, ...
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        out.problem = f"not a valid notebook file ({type(e).__name__}: {first[:160]})"
        return out
    sol, rel = truth(assignment)
    sol_cells = {contract.grade_id(c): c for c in sol.cells if contract.grade_id(c)}
    rel_cells = {contract.grade_id(c): c for c in rel.cells if contract.grade_id(c)}
    order = [contract.grade_id(c) for c in rel.cells if contract.grade_id(c)]

    seen, cells = set(), []
    for c in nb.cells:
        gid = contract.grade_id(c)
        if gid is None and "nbgrader" in c.get("metadata", {}):
            out.flags.append(f"cell metadata edited: an nbgrader entry without grade id "
                             f"({str(c.metadata.nbgrader)[:80]})")
            c.metadata.pop("nbgrader")
        if gid is None:
            c = copy.deepcopy(c)
            cells.append(c)
            continue
        if gid not in rel_cells:
            out.flags.append(f"cell metadata edited: unknown graded cell {gid!r} (its nbgrader metadata was removed)")
            c = copy.deepcopy(c)
            c.metadata.pop("nbgrader")
            cells.append(c)
            continue
        if gid in seen:
            out.flags.append(f"graded cell {gid!r} appears twice; the copy was dropped")
            continue
        seen.add(gid)
        cells.append(_restore(c, rel_cells[gid], sol_cells[gid], out.flags))
    # graded cells the submission lost go back after the graded cell that precedes them
    for i, gid in enumerate(order):
        if gid in seen:
            continue
        out.flags.append(f"graded cell {gid!r} was deleted (restored from the course)")
        new = _restore(None, rel_cells[gid], sol_cells[gid], out.flags)
        prev = next((order[j] for j in range(i - 1, -1, -1) if order[j] in seen), None)
        at = 0 if prev is None else 1 + next(k for k, c in enumerate(cells) if contract.grade_id(c) == prev)
        cells.insert(at, new)
        seen.add(gid)

    run = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(rel.metadata))
    for c in run.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
        if contract.is_test(c):
            out.test_ids.append(contract.grade_id(c))
        elif contract.is_given(c):
            out.given_names[contract.grade_id(c)] = defined_names(c.source)
    course_sources = {c.source for c in rel.cells}   # cells as shipped are not the student's code
    out.flags += scan.scan(run, set(out.given_names) | set(out.test_ids), course_sources)
    out.notebook = run
    return out


def _restore(cell, rel_cell, sol_cell, flags):
    """The cell to run for one grade id: truth for metadata, locked sources and tests."""
    gid = contract.grade_id(rel_cell)
    m = contract.nbgrader_meta(rel_cell)
    if cell is not None:
        theirs = contract.nbgrader_meta(cell)
        if theirs != m:
            changed = sorted(k for k in set(theirs) | set(m) if theirs.get(k) != m.get(k))
            flags.append(f"cell metadata edited in {gid!r}: {', '.join(changed)}")
        if contract.is_locked(rel_cell) and cell.source != rel_cell.source:
            flags.append(f"locked cell {gid!r} was edited (the course's version was run)")
        if cell.cell_type != rel_cell.cell_type:
            flags.append(f"cell {gid!r} changed type to {cell.cell_type}")
    new = copy.deepcopy(rel_cell)
    if contract.is_test(rel_cell):
        new.source = sol_cell.source                    # the test cell, hidden tests restored
    elif contract.has_solution(rel_cell) and cell is not None and cell.cell_type == rel_cell.cell_type:
        new.source = cell.source                        # the student's answer
    return new


def defined_names(src):
    """Names a given cell binds at top level (imports, assignments, defs)."""
    import ast
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names += [(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"]
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names += _bound(target)
    return sorted(set(names))


def _bound(target):
    """Names an assignment target binds: ``x``, and each name of ``a, (b, *c) = ...``."""
    import ast
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _bound(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _bound(elt)]
    return []    # x.attr = ..., x[i] = ...: no name is bound
