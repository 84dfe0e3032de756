from autograder import contract

# Same environment as the Makefile gives (contract.KERNEL_ENV: no hub, no OpenMP spin-waiting),
# and no display.
contract.apply_kernel_env()
import matplotlib  # noqa: E402

matplotlib.use("Agg")  # in this process only: kernels keep their inline backend

# imported after the kernel environment above is applied, on purpose: nothing they load may
# read the environment before it is set
import pytest  # noqa: E402

from autograder import zmqpoll  # noqa: E402

zmqpoll.install()   # tests that run papermill/nbclient themselves get the same client fix

# The tiers (pyproject.toml's markers, `make test-fast`): a test over SLOW_S seconds, its fixtures'
# set-up included, belongs to the slow tier. Reading the source cannot tell (tests/project/
# test_layout.py checks the other markers), so each run lists the unmarked ones it timed.
SLOW_S = 20
_unmarked_seconds = {}


def pytest_runtest_logreport(report):
    if "slow" not in report.keywords:
        _unmarked_seconds[report.nodeid] = _unmarked_seconds.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    over = sorted(((s, n) for n, s in _unmarked_seconds.items() if s > SLOW_S), reverse=True)
    if over:
        terminalreporter.write_sep("-", f"over {SLOW_S} s without the slow marker: mark them slow or make them faster")
        for seconds, nodeid in over:
            terminalreporter.write_line(f"{seconds:7.1f} s  {nodeid}")


@pytest.fixture(scope="session")
def executed():
    """executed(assignment) -> (solution notebook, namespace after running all its cells once)."""
    import nbtools
    cache = {}

    def get(assignment):
        if assignment not in cache:
            nb = nbtools.solution_nb(assignment)
            cache[assignment] = nb, nbtools.run_cells(nb)
        return cache[assignment]
    return get


@pytest.fixture(scope="session")
def solution_run(tmp_path_factory):
    """solution_run(assignment) -> (folder, seconds): the solution notebook executed by papermill
    (`autograder.course.execute.execute(assignment, QUICK=True)`, a real kernel) once per session;
    the folder holds <id>.ipynb and its parity record <id>.parity.json. Shared by the tests that
    need that run (test_execute, test_parity, test_model_solutions); they must not change the folder."""
    from autograder.course import execute
    run = execute.execute      # the real one, even where a test has replaced it since
    cache = {}

    def get(assignment):
        if assignment not in cache:
            folder = tmp_path_factory.mktemp(f"run_{assignment}")
            _, seconds = run(assignment, out_dir=folder, QUICK=True)
            cache[assignment] = folder, seconds
        return cache[assignment]
    return get


@pytest.fixture(scope="session")
def autograde_batch(tmp_path_factory):
    """One batch through the real grader (local pool, two workers), shared by the tests that
    need it: per notebook a correct submission (alice), the untouched release (bob), the first
    typical mistake of every exercise (wrong1: its visible tests name it), the first subtle one
    (wrong2: only the hidden tests catch it) and a file that is not a notebook (broken). For 01 and
    04 also the class of the instructor's report (nbtools.report_class: ten students with every
    other wrong answer planted, tests/honest's independent answers and two near-copies, and a
    second blank), so the report's test grades nothing of its own.
    Returns (rows by (student, assignment), csv path, submissions folder, workspace)."""
    import nbformat

    import nbtools
    from autograder import grade, paths
    from autograder.grading import autograde
    tmp = tmp_path_factory.mktemp("grading")
    subs = tmp / "submissions"

    def write(nb, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)

    for a in paths.present_assignments():
        rel = nbtools.release_nb(a)
        write(nbtools.submission(rel, nbtools.solution_answers(a)), subs / "alice" / a / f"{a}.ipynb")
        write(rel, subs / "bob" / a / f"{a}.ipynb")
        for student, kind in nbtools.WRONG_STUDENTS.items():
            answers = {gid: w.code for gid, w in nbtools.first_wrong(a, kind).items()}
            write(nbtools.submission(rel, answers), subs / student / a / f"{a}.ipynb")
        (subs / "broken" / a).mkdir(parents=True)
        (subs / "broken" / a / f"{a}.ipynb").write_text('{"cells": [ this is not json')
        if a in nbtools.CLASS_ASSIGNMENTS:
            solution = nbtools.solution_answers(a)
            for student, planted in nbtools.report_class(a).items():
                answers = {**solution, **{ex: code for ex, (_, _, code) in planted.items()}}
                write(nbtools.submission(rel, answers), subs / student / a / f"{a}.ipynb")
            write(rel, subs / nbtools.CLASS_BLANK / a / f"{a}.ipynb")
    out = tmp / "grades.csv"
    rows = grade.grade(subs, out, workspace=tmp / "ws", settings=autograde.Settings(workers=2))
    return {(r.student_id, r.assignment): r for r in rows}, out, subs, tmp / "ws"


@pytest.fixture(scope="session")
def class_report(autograde_batch, tmp_path_factory):
    """The instructor's report of the batch's 01 and 04 (the class of nbtools.report_class),
    built once: (reports by assignment, the report folder, the workspace)."""
    import nbtools
    from autograder import paths
    from autograder.reports import report
    _, _, _, ws = autograde_batch
    out = tmp_path_factory.mktemp("report")
    present = [a for a in nbtools.CLASS_ASSIGNMENTS if a in paths.present_assignments()]
    return report.build(ws, out, present), out, ws
