"""One submission, one task: prepare it, execute it in its jail, write its result.

The same function runs in a worker of the local process pool (autograder.pool), in a Dask
worker (autograder.cluster), or in this process (one worker). It never touches the gradebook:
only the process that started the batch records scores there (autograder.autograde).

It is idempotent: running it twice for the same submission writes the same two files,
`WS/autograded/<student>/<assignment>/<assignment>.ipynb` (the executed notebook, hidden tests
included, mode 600) and `WS/results/<student>/<assignment>.json` (autograder.results). A worker
therefore needs the workspace and the course (its checkout and virtual environment) at the same
paths as the instructor's machine: the same machine, or a shared filesystem.
"""

import hashlib
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import nbformat

from . import results, runner, sandbox, submission


@dataclass
class Job:
    student: str
    assignment: str
    path: str                      # WS/submitted/<student>/<assignment>/<assignment>.ipynb
    workspace: str
    limits: sandbox.Limits         # limits.threads None: the share rule below, on the worker
    isolate: bool
    course_sha256: str             # submission.fingerprint on the instructor's machine
    submission_sha256: str = ""    # of the file as the instructor's machine read it
    kernels_at_once: int = 1       # kernels that run at once on the worker's machine

    def failed(self, reason, **extra):
        """A result for this submission that says why it could not be graded."""
        return results.failed(self.student, self.assignment, reason, isolated=self.isolate,
                              submission_sha256=self.submission_sha256, course_sha256=self.course_sha256, **extra)


def executed_path(ws, student, assignment):
    return Path(ws) / "autograded" / student / assignment / f"{assignment}.ipynb"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(job, save=True):
    """Grade one submission and write its result; returns the record (autograder.results).

    save=False: the caller writes the result (autograder.pool, grading in a thread of the batch)."""
    t0 = time.perf_counter()
    limits = job.limits
    if limits.threads is None:
        limits = replace(limits, threads=sandbox.threads_per_kernel(job.kernels_at_once))
    ws = Path(job.workspace)
    data = Path(job.path).read_bytes()
    record = {"student_id": job.student, "assignment": job.assignment, "isolated": job.isolate,
              "threads": limits.threads, "submission_sha256": hashlib.sha256(data).hexdigest(),
              "course_sha256": job.course_sha256, "recorded": True}
    here = submission.fingerprint(job.assignment)
    if here != job.course_sha256:
        record.update(status="failed", flags=[], tests=[], retry=True,
                      reason=f"grader error: this worker's course files differ from the instructor's "
                             f"({here[:12]} != {job.course_sha256[:12]}); update its checkout")
        return _finish(ws, record, t0, save)
    prepared = submission.prepare(data, job.assignment)
    if prepared.notebook is None:
        record.update(status="failed", reason=prepared.problem, flags=[], tests=[])
        return _finish(ws, record, t0, save)
    try:
        result, nb = runner.run(prepared, ws / "run" / f"{job.student}--{job.assignment}", limits, job.isolate)
    except Exception as e:  # the grader itself must never take the batch down
        record.update(status="failed", reason=f"grader error: {type(e).__name__}: {e}"[:300],
                      flags=prepared.flags, tests=[], retry=True)
        return _finish(ws, record, t0, save)
    out = executed_path(ws, job.student, job.assignment)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    os.chmod(out, 0o640)   # the grader and the workspace's group (a hub's instructors), never students
    record.update(asdict(result), executed=str(out), recorded=result.status != "graded")
    return _finish(ws, record, t0, save)


def _finish(ws, record, t0, save=True):
    record["seconds"] = time.perf_counter() - t0
    if save:
        results.save(ws, record)
    return record
