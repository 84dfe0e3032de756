"""The grader's results: one record per submission, one JSON file each,
`WS/results/<student>/<assignment>.json`.

This is the one place that reads and writes them. A record is a `Record` (below); every module
reads its fields by name, never by string key. It is written once per graded submission, by the
process that started the batch, after the submission's scores are in the gradebook
(autograder.grading.autograde): so a record on disk means "graded and recorded", a batch that
is interrupted keeps every submission recorded so far, and a rerun can tell what is already
done. (The executed notebook, `WS/autograded/...`, is written by the worker that graded it.)

A record is current for a submission when both hashes match and it is not marked retry: a
resubmission, a changed test cell or a grader error makes it stale, and the next `autograde`
grades it again.
"""

import contextlib
import fcntl
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

FOLDER = "results"
HISTORY = "history.jsonl"      # WS/history.jsonl: one line per recorded grading, every attempt kept


@dataclass
class TestResult:
    """One graded test cell of one submission."""
    grade_id: str
    passed: bool
    message: str = ""          # student-facing: exception type and message, never source
    description: str = ""      # what the test checks: the test cell's docstring, captured when graded
    points: float = 0.0        # the cell's points (nbgrader's), all or nothing
    hidden: int = 0            # hidden checks in the cell (contract.test_pieces); 0: none, or not counted
    hidden_passed: int = 0     # of those, how many passed
    failed_in: str = ""        # "visible" or "hidden": the part whose check failed first ("" when passed)
    mistake: str = ""          # a failure's named mistake, <assignment>/<exercise>/<slug>, or
                               # contract.UNRECOGNISED ("" when passed, or recorded before mistakes had ids)


@dataclass
class Record:
    """What grading one submission found. Field by field:"""
    student_id: str
    assignment: str
    status: str                              # "graded" or "failed" (the export adds "needs manual grading")
    reason: str = ""                         # why it failed ("" when graded)
    flags: list = field(default_factory=list)    # tamper signals with their evidence
    tests: list = field(default_factory=list)    # [TestResult] per graded test cell, for feedback
    seconds: float = 0.0                     # wall time of preparing + executing it
    isolated: bool = False                   # ran in the jail
    threads: int | None = None               # threads the kernel was given (torch, OpenMP, MKL, numba)
    tries: int = 1                           # how many times it was started (a worker that died counts)
    executed: str = ""                       # the executed notebook (hidden tests included), WS/autograded/...
    submission_sha256: str = ""              # hash of the submitted file this result belongs to
    course_sha256: str = ""                  # hash of the course files it was graded against
    retry: bool = False                      # the grader failed, not the submission: grade it again
    needs_manual: bool = False               # written answers wait for an instructor (as recorded)
    manual_points: float = 0.0               # points of the written answers, graded by hand

    @property
    def auto_score(self):
        """(points scored, points possible) of the automatically graded test cells."""
        return sum(t.points for t in self.tests if t.passed), sum(t.points for t in self.tests)

    @property
    def key(self):
        return f"{self.student_id}/{self.assignment}"

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        """A record from its file's content; unknown keys (older files) are ignored."""
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in data.items() if k in known}
        if data.get("recorded") is False:   # a file of the older layout, graded but never recorded
            kept["retry"] = True
        kept["tests"] = [t if isinstance(t, TestResult) else
                         TestResult(**{k: v for k, v in t.items() if k in TestResult.__dataclass_fields__})
                         for t in kept.get("tests", [])]
        return cls(**kept)


@contextlib.contextmanager
def writer_lock(ws):
    """One writer of the gradebook and the records at a time: a batch and the hub's grading
    service may both run on a workspace (an exclusive lock on WS/.writer.lock)."""
    with locked(Path(ws) / ".writer.lock"):
        yield


@contextlib.contextmanager
def locked(lock):
    """An exclusive flock on the file `lock` (made if missing) for the block; the system frees it
    if the holder dies, and a kernel started meanwhile does not inherit it."""
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    # read-only: flock needs no write access, so another instructor of the course can take a lock
    # file that root made (the hub's service) with its default mode 644
    fd = os.open(lock, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o664)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)      # frees the lock


def path(ws, student, assignment):
    return Path(ws) / FOLDER / student / f"{assignment}.json"


def key(record):
    return record.key


def save(ws, record):
    """Write one submission's record atomically (a reader never sees half a file); idempotent."""
    out = path(ws, record.student_id, record.assignment)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record.to_dict(), f, indent=1)
    os.chmod(tmp, 0o600)
    os.replace(tmp, out)
    return out


def load_one(ws, student, assignment):
    """The record of one submission, or None when it has none (or an unreadable one)."""
    p = path(ws, student, assignment)
    try:
        return Record.from_dict(json.loads(p.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def load(ws):
    """{"student/assignment": Record} for every submission with a result, sorted by key."""
    base = Path(ws) / FOLDER
    out = {}
    for p in sorted(base.glob("*/*.json")) if base.exists() else []:
        try:
            record = Record.from_dict(json.loads(p.read_text()))
        except (ValueError, TypeError):
            continue   # a file being replaced is never half-written (save is atomic); skip junk
        out[record.key] = record
    return dict(sorted(out.items()))


def failed(student, assignment, reason, retry=False, **extra):
    """The record of a submission that could not be graded, with the reason. retry: the grader's
    fault, not the submission's: the next run grades it again."""
    return Record(student, assignment, "failed", reason=reason, retry=retry, **extra)


def is_current(record, submission_sha256, course_sha256):
    """Does this record belong to this submitted file, graded against these course files?"""
    return (record is not None and not record.retry
            and record.submission_sha256 == submission_sha256
            and record.course_sha256 == course_sha256)


def append_history(ws, record, submitted_at=None):
    """Keep one line for this grading in WS/history.jsonl (the record file keeps only the latest
    attempt): who, when it was submitted, the auto score and each failed test's named mistake.
    The instructor's report reads it for attempts over time. Called under writer_lock."""
    score, possible = record.auto_score
    line = {"student_id": record.student_id, "assignment": record.assignment, "status": record.status,
            "submitted_at": submitted_at.isoformat() if submitted_at else "",
            "submission_sha256": record.submission_sha256, "auto_score": score, "auto_max": possible,
            "mistakes": {t.grade_id: t.mistake for t in record.tests if not t.passed}}
    out = Path(ws) / HISTORY
    with open(out, "a") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return out


def load_history(ws):
    """Every line of WS/history.jsonl as a dict, oldest first; a line cut short by a crash is skipped."""
    out = []
    path = Path(ws) / HISTORY
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
