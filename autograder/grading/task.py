"""One submission, one task: prepare it, execute it in its jail, return its record.

The same function runs in a worker of the local process pool (autograder.grading.pool), in a Dask
worker (autograder.grading.cluster), or in this process (one worker). It never touches the gradebook:
only the process that started the batch records scores there (autograder.grading.autograde).

It is idempotent: running it twice for the same submission writes the same file,
`WS/autograded/<student>/<assignment>/<assignment>.ipynb` (the executed notebook, hidden tests
included, mode 640), and returns the submission's record (autograder.grading.results), which the
process that started the batch writes, once, when it is in the gradebook. A worker
therefore needs the workspace and the course (its checkout and virtual environment) at the same
paths as the instructor's machine: the same machine, or a shared filesystem.

The submission's run folder, `WS/run/<student>--<assignment>/` (its kernel's sockets and its own
folder, autograder.grading.sandbox), is removed when the task ends, however it ends: what the
record and the feedback need is the executed notebook.
"""

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat

from autograder import contract
from autograder.grading import results, runner, sandbox, submission


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



@contextlib.contextmanager
def one_at_a_time(ws, name):
    """One grading of a submission at a time in its run folder WS/run/<name>: the hub's grading
    service and an instructor's batch may grade the same submission at once, and each empties the
    folder when it starts and removes it when done (under the other's kernel, which then died).
    The second waits for the first (an exclusive lock on WS/locks/<name>.lock, freed by the
    system if its holder dies)."""
    with results.locked(Path(ws) / "locks" / f"{name}.lock"):
        yield

def run(job):
    """Grade one submission; returns its Record (autograder.grading.results). The executed
    notebook is written here; the record is written by the process that records it."""
    t0 = time.perf_counter()
    limits = job.limits
    if limits.threads is None:
        limits = replace(limits, threads=sandbox.threads_per_kernel(job.kernels_at_once))
    ws = Path(job.workspace)
    data = Path(job.path).read_bytes()
    record = results.Record(job.student, job.assignment, "graded", isolated=job.isolate, threads=limits.threads,
                            submission_sha256=hashlib.sha256(data).hexdigest(), course_sha256=job.course_sha256)
    here = submission.fingerprint(job.assignment)
    if here != job.course_sha256:
        record.status, record.retry = "failed", True
        record.reason = (f"grader error: this worker's course files differ from the instructor's "
                         f"({here[:12]} != {job.course_sha256[:12]}); update its checkout")
        return _finish(record, t0)
    prepared = submission.prepare(data, job.assignment)
    if prepared.notebook is None:
        record.status, record.reason = "failed", prepared.problem
        return _finish(record, t0)
    record.manual_points = float(sum(contract.points(c) for c in prepared.notebook.cells if contract.is_written(c)))
    workdir = ws / "run" / f"{job.student}--{job.assignment}"
    with one_at_a_time(ws, workdir.name):
        try:
            result, nb = runner.run(prepared, workdir, limits, job.isolate)
        except Exception as e:  # the grader itself must never take the batch down
            record.status, record.reason = "failed", f"grader error: {type(e).__name__}: {e}"[:300]
            record.flags, record.retry = prepared.flags, True
            return _finish(record, t0)
        finally:
            sandbox.remove_workdir(workdir)
    out = executed_path(ws, job.student, job.assignment)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    os.chmod(out, 0o640)   # the grader and the workspace's group (a hub's instructors), never students
    record.status, record.reason, record.flags, record.tests = result.status, result.reason, result.flags, result.tests
    record.executed = str(out)
    return _finish(record, t0)


def _finish(record, t0):
    record.seconds = time.perf_counter() - t0
    return record
