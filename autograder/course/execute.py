"""Execute solution notebooks with papermill (QUICK by default) and report seconds per notebook.

Outputs go to build/executed/<id>.ipynb; the committed notebooks are never touched. Notebooks
keep some results between runs (paths.course_caches: build/<id>_*), so a run is timed twice:
cold, with those caches moved aside (a student's first run, and every graded submission: the
grader's jail does not show build/), then warm, with what the cold run left. Caches that were
there before are put back afterwards (those the cold run rewrote are kept). One notebook runs at
a time, with all cores; nothing here runs kernels side by side.
Beside each executed notebook goes <id>.parity.json, the notebook's key numbers (archlab.parity:
the kernel is told where by the environment variable ARCHLAB_PARITY_RECORD), which
scripts/parity.py compares across devices.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import papermill

from autograder import contract, paths, zmqpoll

zmqpoll.install()   # papermill's client must not wait out a cell timeout on a missed wake-up

RECORD_ENV = "ARCHLAB_PARITY_RECORD"  # = archlab.parity.ENV (archlab imports torch; this stays light)


def execute(assignment, out_dir=None, source=None, record=True, **parameters):
    """Run solutions/<id>/<id>.ipynb (or `source`, in its folder) with papermill; return
    (output path, seconds). `record=False`: no parity record (a run that is not the notebook's
    full solution, e.g. a prepared submission under NBGRADER_EXECUTION, where the recorded
    variables are not computed)."""
    contract.apply_kernel_env()     # papermill's kernel inherits os.environ
    out_dir = Path(out_dir or paths.BUILD / "executed")
    out_dir.mkdir(parents=True, exist_ok=True)
    src = Path(source) if source else paths.SOLUTIONS / assignment / f"{assignment}.ipynb"
    out = out_dir / f"{assignment}.ipynb"
    record_path = out_dir / f"{assignment}.parity.json"
    record_path.unlink(missing_ok=True)  # a failed run must not leave an older run's record behind
    if record:
        os.environ[RECORD_ENV] = str(record_path.resolve())
    t0 = time.perf_counter()
    try:
        # a cell that hangs (a stalled kernel) fails the run instead of holding CI until its limit
        papermill.execute_notebook(str(src), str(out), parameters=parameters, kernel_name="python3",
                                   cwd=str(src.parent), progress_bar=False, execution_timeout=600,
                                   start_timeout=120)
    finally:
        os.environ.pop(RECORD_ENV, None)
    return out, time.perf_counter() - t0


def cold_and_warm(assignment, out_dir=None, warm=True, source=None, record=True, **parameters):
    """{"cold": seconds, "warm": seconds (if warm)}: first without the notebook's caches."""
    paths.BUILD.mkdir(exist_ok=True)
    for left in paths.BUILD.glob(f".cold-{assignment}-*"):   # a run killed before it put them back
        _put_back(left, [paths.BUILD / f.name for f in left.iterdir()])
    aside = Path(tempfile.mkdtemp(prefix=f".cold-{assignment}-", dir=paths.BUILD))
    moved = []
    try:
        for f in paths.course_caches(assignment):
            shutil.move(str(f), aside / f.name)
            moved.append(f)
        seconds = {"cold": execute(assignment, out_dir, source, record=record, **parameters)[1]}
        if warm:
            seconds["warm"] = execute(assignment, out_dir, source, record=record, **parameters)[1]
    finally:
        _put_back(aside, moved)
    return seconds


def _put_back(aside, files):
    """Move caches set aside back, unless the run wrote a newer one; then drop the folder."""
    for f in files:
        if not f.exists() and (aside / f.name).exists():
            shutil.move(str(aside / f.name), f)
    shutil.rmtree(aside, ignore_errors=True)
