"""The grader's results: one JSON file per submission, `WS/results/<student>/<assignment>.json`.

This is the one place that reads and writes them. `autograde` (its workers and the process
that started the batch), `grade` (submissions `collect` could not take), `feedback`, `export`
and `status` all go through `save` and `load`. One file per submission means a worker that
finishes writes its own result without touching anybody else's, a batch that is interrupted
keeps everything finished so far, and a rerun can tell what is already graded.

A record (a plain dict, so it is also the file's content):

    student_id, assignment   who and what
    status                   "graded" or "failed" (export adds "needs manual grading" from the gradebook)
    reason                   why it failed ("" when graded)
    flags                    tamper signals with their evidence
    tests                    [{grade_id, passed, message}] per graded test cell, for feedback
    seconds                  wall time of preparing + executing it
    isolated                 ran in the jail
    threads                  threads the kernel was given (torch, OpenMP, MKL, numba)
    tries                    how many times it was started (a worker that died counts)
    executed                 the executed notebook (hidden tests included), WS/autograded/...
    submission_sha256        hash of the submitted file this result belongs to
    course_sha256            hash of the course files it was graded against (submission.fingerprint)
    recorded                 True once its scores are in the gradebook (or there is nothing to record)
    retry                    True when the grader failed, not the submission (a grader error)

A result is current for a submission when both hashes match and it is not marked retry: a
resubmission, a changed test cell or a grader error makes it stale, and the next `autograde`
grades it again.
"""

import json
import os
import tempfile
from pathlib import Path

FOLDER = "results"


def path(ws, student, assignment):
    return Path(ws) / FOLDER / student / f"{assignment}.json"


def key(record):
    return f"{record['student_id']}/{record['assignment']}"


def save(ws, record):
    """Write one submission's record atomically (a reader never sees half a file); idempotent."""
    out = path(ws, record["student_id"], record["assignment"])
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=1)
    os.chmod(tmp, 0o600)
    os.replace(tmp, out)
    return out


def load_one(ws, student, assignment):
    """The record of one submission, or None when it has none (or an unreadable one)."""
    p = path(ws, student, assignment)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def load(ws):
    """{"student/assignment": record} for every submission with a result, sorted by key."""
    base = Path(ws) / FOLDER
    out = {}
    for p in sorted(base.glob("*/*.json")) if base.exists() else []:
        try:
            record = json.loads(p.read_text())
        except ValueError:
            continue   # a file being replaced is never half-written (save is atomic); skip junk
        out[key(record)] = record
    return dict(sorted(out.items()))


def failed(student, assignment, reason, retry=False, **extra):
    """The record of a submission that could not be graded, with the reason. retry: the grader's
    fault, not the submission's: the next run grades it again."""
    return {"student_id": student, "assignment": assignment, "status": "failed", "reason": reason,
            "flags": [], "tests": [], "recorded": True, "retry": retry, **extra}


def is_current(record, submission_sha256, course_sha256):
    """Does this record belong to this submitted file, graded against these course files?"""
    return (record is not None and not record.get("retry")
            and record.get("submission_sha256") == submission_sha256
            and record.get("course_sha256") == course_sha256)
