"""Reading course notebooks in tests: cells by grade id, running cells in-process, submissions.

Executing a notebook costs up to a minute, so tests that try many wrong answers do not start a
kernel per answer: they run the solution notebook's cells once in a plain namespace, then for
each wrong answer copy that namespace, run the wrong code and the exercise's test cell in it.
"""

import contextlib
import copy
import importlib.util
import os
from pathlib import Path

import nbformat

from autograder import contract
from autograder.grading import submission as _submission
from autograder.paths import NOTEBOOKS, ROOT, SOLUTIONS  # noqa: F401  (tests read them from here too)


def solution_nb(assignment):
    return nbformat.read(_submission.truth_files(assignment)[0], as_version=4)


def release_nb(assignment):
    return nbformat.read(_submission.truth_files(assignment)[1], as_version=4)


nbgrader_meta = contract.nbgrader_meta     # a cell's nbgrader metadata ({} when it has none)


def in_ci():
    """CI is set (to anything but 0/false/no): a test that cannot run here fails instead of skipping."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def figure_digest():
    """sha256 of the current matplotlib figure as PNG (then closed): tells two drawings of a widget
    apart with a short failure message. The figure must have drawn some line."""
    import hashlib
    import io

    import matplotlib.pyplot as plt
    fig = plt.gcf()
    assert any(line.get_xydata().size for ax in fig.axes for line in ax.lines), "the widget drew an empty plot"
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close("all")
    return hashlib.sha256(buf.getvalue()).hexdigest()


def answer_ids(nb):
    """grade ids of the autograded answer cells (code cells with solution: true)."""
    return [contract.grade_id(c) for c in nb.cells if contract.is_answer(c)]


def cell(nb, grade_id):
    for c in nb.cells:
        if contract.grade_id(c) == grade_id:
            return c
    raise KeyError(f"no cell with grade_id {grade_id!r}")


# The solution as a student would have typed it: region markers removed, code kept.
strip_markers = contract.strip_solution_markers


def wrong_answers(assignment):
    """{answer grade_id: {label: Wrong}} from tests/wrong/w<assignment>.py.

    An entry of WRONG is either the whole answer cell as a string (it must lose the exercise's
    points, wherever its test cell notices) or a dict:
      {"code": cell, "visible": "keyword"}  a typical mistake: the VISIBLE tests (the test cell as
                                            students have it) must fail, and the message must
                                            contain the keyword (case-insensitive);
      {"code": cell, "hidden": "keyword"}   a subtle mistake: the visible tests pass and only the
                                            hidden tests fail (with the keyword in the message,
                                            when one is given).
    Either may say "mistake": "slug", the named mistake it fails with, when the keyword is in no
    hint (a message put together from pieces).
    """
    mod = _wrong_module(assignment)
    return {gid: {label: Wrong.of(entry) for label, entry in entries.items()} for gid, entries in mod.WRONG.items()}


def _wrong_module(assignment):
    path = Path(__file__).parent / "wrong" / f"w{assignment}.py"
    spec = importlib.util.spec_from_file_location(f"wrong_{assignment}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def built_on(assignment):
    """{grade_id: (earlier answers it calls, keyword its visible test says when one of them is wrong)}
    from BUILT_ON in tests/wrong/w<assignment>.py: in a submission where those earlier answers are
    wrong too, the exercise's own diagnosis cannot show; its test must say to fix them first."""
    return getattr(_wrong_module(assignment), "BUILT_ON", {})


class Wrong:
    def __init__(self, code, visible=None, hidden=None, mistake=None):
        # mistake: the slug it fails with, where no hint holds the keyword (the report's test
        # otherwise finds the slug by the keyword)
        self.code, self.visible, self.hidden, self.mistake = code, visible, hidden, mistake

    @classmethod
    def of(cls, entry):
        return cls(entry) if isinstance(entry, str) else cls(**entry)

    @property
    def kind(self):
        return "visible" if self.visible is not None else "hidden" if self.hidden is not None else "any"


# The batch of tests/conftest.py:autograde_batch submits, as students wrong1 and wrong2, the first
# wrong answer of each kind of every exercise.
WRONG_STUDENTS = {"wrong1": "visible", "wrong2": "hidden"}


def first_wrong(assignment, kind):
    """{grade_id: the first wrong answer of that kind} for every exercise of the notebook."""
    return {gid: next(w for w in labels.values() if w.kind == kind)
            for gid, labels in wrong_answers(assignment).items()}


# A test cell as students have it: the hidden-test region removed.
visible_part = contract.visible_part


@contextlib.contextmanager
def grading_environment():
    """NBGRADER_EXECUTION set while notebook code runs in this process, as the grader sets it
    (QUICK sizes), and put back afterwards: kernels that later tests start (papermill, JupyterLab)
    must not inherit it."""
    before = os.environ.get("NBGRADER_EXECUTION")
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("NBGRADER_EXECUTION", None)
        else:
            os.environ["NBGRADER_EXECUTION"] = before


def run_cells(nb, namespace=None):
    """exec every code cell of nb in one namespace (markers stripped), as grading would (QUICK)."""
    ns = {} if namespace is None else namespace
    ns.setdefault("__name__", "__main__")
    with grading_environment():
        for c in nb.cells:
            if c.cell_type == "code":
                exec(compile(strip_markers(c.source), f"<cell {c.id}>", "exec"), ns)
    return ns


def run_test_cell(nb, answer_id, ns, visible_only=False):
    """Run the graded test cell of one exercise in ns; return None if it passed, else the error.

    visible_only: run only what students see (the hidden-test region removed)."""
    src = cell(nb, f"test_{answer_id}").source
    if visible_only:
        src = visible_part(src)
    try:
        with grading_environment():
            exec(compile(src, f"<test_{answer_id}>", "exec"), ns)
    except Exception as e:  # any failure of a test cell costs its points in nbgrader
        return e
    return None


def submission(release, answers):
    """A filled-in copy of the release: answers = {grade_id: source} replaces those cells."""
    nb = copy.deepcopy(release)
    for c in nb.cells:
        gid = contract.grade_id(c)
        if gid in answers:
            c.source = answers[gid]
    return nb


def solution_answers(assignment):
    """What a student who answers everything correctly submits: solution code, model answers."""
    sol = solution_nb(assignment)
    return {contract.grade_id(c): strip_markers(c.source) for c in sol.cells if contract.has_solution(c)}


# ---- a class whose make-up is known, for the instructor's report ---------------------------------
CLASS_STUDENTS = [f"s{i:02d}" for i in range(1, 11)]      # besides the batch's alice, bob, wrong1, wrong2
CLASS_BLANK = "blank1"                                     # a second untouched release (bob is the first)
CLASS_ASSIGNMENTS = ("01_self_attention", "04_jamba_moe")  # the assignments the class submits


def read_submission(ws, student, assignment):
    """A submission as the grader collected it into its workspace."""
    return nbformat.read(Path(ws) / "submitted" / student / assignment / f"{assignment}.ipynb", as_version=4)


def honest_answers(assignment):
    """(HONEST, NEAR) from tests/honest/h<assignment>.py, or ({}, {}) when it has none."""
    path = Path(__file__).parent / "honest" / f"h{assignment}.py"
    if not path.exists():
        return {}, {}
    spec = importlib.util.spec_from_file_location(f"honest_{assignment}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.HONEST, mod.NEAR


def report_class(assignment):
    """The synthetic class of the report's test: {student: {exercise: (kind, label, code)}} for
    CLASS_STUDENTS, every other answer the solution's. kind is "wrong" (a tests/wrong answer:
    every one the batch's wrong1/wrong2 do not already carry is planted once, in turn), "honest"
    (tests/honest's independent right answers, one student each) or "near" (the two near-copies).
    A wrong answer is never planted in an exercise built on another one (BUILT_ON) that the same
    student has wrong, nor the other way round: its own mistake could not show."""
    wrong, deps = wrong_answers(assignment), built_on(assignment)
    honest, near = honest_answers(assignment)
    taken = {gid: {next(lb for lb, w in ws.items() if w.kind == k) for k in WRONG_STUDENTS.values()}
             for gid, ws in wrong.items()}
    plan = {s: {} for s in CLASS_STUDENTS}
    for ex, variants in honest.items():
        for s, (label, code) in zip(CLASS_STUDENTS, variants.items()):
            plan[s][ex] = ("honest", label, code)
    for ex, (a, b) in near.items():
        free = [s for s in CLASS_STUDENTS if ex not in plan[s]][:2]
        plan[free[0]][ex], plan[free[1]][ex] = ("near", "original", a), ("near", "renamed copy", b)

    def related(ex):
        out = set(deps.get(ex, ((), None))[0])
        out |= {d for d, (pre, _) in deps.items() if ex in pre}
        return out

    turn = 0
    for ex, ws in wrong.items():
        for label, w in ws.items():
            if label in taken[ex]:
                continue
            for k in range(len(CLASS_STUDENTS)):
                s = CLASS_STUDENTS[(turn + k) % len(CLASS_STUDENTS)]
                if ex in plan[s] or any(plan[s].get(r, ("",))[0] == "wrong" for r in related(ex)):
                    continue
                plan[s][ex] = ("wrong", label, w.code)
                turn = (turn + k + 1) % len(CLASS_STUDENTS)
                break
    return plan
