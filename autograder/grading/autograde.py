"""Autograde every collected submission, then record the scores with nbgrader.

Each submission is one task (autograder.grading.task): prepare it, execute it in its own jailed kernel,
write its result file. Tasks run on a backend:

    local process pool (default)   --workers N        autograder.grading.pool
    Dask distributed               --cluster local:N  autograder.grading.cluster
                                   --scheduler tcp://HOST:8786

Only this process writes to the gradebook, one submission at a time, as results arrive, with
nbgrader's own SaveAutoGrades: it never touches manual scores, so recording again is
idempotent and keeps what instructors entered. The gradebook is whatever SQLAlchemy URL the
workspace's nbgrader configuration names (a SQLite file by default).

A submission whose result is current (same submitted file, same course files; see
autograder.grading.results) is not graded again, so an interrupted batch, run again, grades only what is
left; `force` regrades everything. Each kernel gets its share of the machine's cores for torch,
OpenMP, MKL and numba (cores / kernels at once, at least 1; `threads_per_kernel` overrides).

Recording a submission is one gradebook session (autograder.grading.gradebook): its scores, its
time against the due date and the late penalty the course's policy gives it
(autograder.grading.late); then its record is written, once (autograder.grading.results).

SIGINT (Ctrl-C) and SIGTERM (what JupyterHub, systemd and Kubernetes send to stop a service)
stop a batch in any phase within seconds: the kernels that are running are killed (a local
pool's or LocalCluster's worker processes too), the results already written are kept, and
`autograde` raises Interrupted, which the command line reports as "interrupted: ..." with exit
status 130 (SIGINT) or 143 (SIGTERM). On a running Dask scheduler the tasks already started
finish on their workers and are graded again by the next run.
"""

import contextlib
import logging
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from nbgrader.api import Gradebook
from tqdm import tqdm

from autograder import nbg
from autograder.errors import CourseError
from autograder.grading import cluster, gradebook, late, pool, results, sandbox, submission, task

log = logging.getLogger(__name__)


@dataclass
class Settings:
    workers: int = 1                        # local pool: submissions graded at once
    cluster: str | None = None              # "local:N": a distributed.LocalCluster of N workers
    scheduler: str | None = None            # "tcp://HOST:8786": a running Dask scheduler
    threads_per_kernel: int | None = None   # None: usable cores / kernels at once, at least 1
    force: bool = False                     # regrade submissions that have a current result
    max_tries: int = 3                      # starts of one submission before "the worker died"
    progress: bool | None = None            # progress bar; None: only on a terminal

    def __post_init__(self):
        if self.workers < 1:
            raise CourseError(f"--workers must be at least 1 (got {self.workers})")
        if self.threads_per_kernel is not None and self.threads_per_kernel < 1:
            raise CourseError(f"--threads-per-kernel must be at least 1 (got {self.threads_per_kernel})")
        if self.max_tries < 1:
            raise CourseError(f"--max-tries must be at least 1 (got {self.max_tries})")
        if self.cluster and self.scheduler:
            raise CourseError("give --cluster local:N or --scheduler tcp://HOST:PORT, not both")
        if self.cluster:
            cluster.parse_local(self.cluster)

    @property
    def backend(self):
        if self.scheduler:
            return f"Dask scheduler {self.scheduler}"
        if self.cluster:
            return f"Dask LocalCluster of {cluster.parse_local(self.cluster)} worker process(es)"
        return f"local pool of {self.workers} worker process(es)"


def submitted(ws):
    """(student, assignment, path) for every notebook in ws/submitted/<student>/<assignment>/."""
    base = Path(ws) / "submitted"
    if not base.exists():
        return []
    return [(p.parent.parent.name, p.parent.name, p)
            for p in sorted(base.glob("*/*/*.ipynb")) if p.stem == p.parent.name]


def prepare_assignments(ws, assignments):
    """Record each assignment in the gradebook (nbgrader generate_assignment), unless it already
    holds it from the same course files: nbgrader takes seconds per notebook for this."""
    api = nbg.api(ws)
    with Gradebook(api.coursedir.db_url) as gb:
        known = {a.name for a in gb.assignments}
    for assignment in sorted(set(assignments)):
        marker = Path(ws) / "release" / assignment / ".course-sha256"
        sha = submission.fingerprint(assignment)
        if assignment in known and marker.exists() and marker.read_text() == sha:
            continue
        result = api.generate_assignment(assignment, force=True, create=True)
        if not result["success"]:
            check_interrupted()      # nbgrader's log capture catches everything, a signal included
            raise CourseError(f"nbgrader could not prepare {assignment}:\n{result.get('log')}")
        marker.write_text(sha)
    return api


def autograde(ws, settings=None, *, limits=None, isolate=None, students=None):
    """Grade what has no current result in ws/submitted; returns this run's records.

    `settings` is a Settings (default: one local worker); `limits` the jail's (sandbox.Limits);
    `isolate` False grades without the jail (None: whenever the jail can be made); `students`
    limits the batch to those student ids. SIGINT or SIGTERM stops it: Interrupted is raised once
    its kernels are killed (its `status` is 130 or 143)."""
    settings = settings or Settings()
    jobs, records = [], []
    with stopped_by_signals():
        try:
            return _autograde(ws, limits, isolate, students, settings, jobs, records)
        except Interrupted as e:
            running = ("tasks already running on the cluster finish there and are graded again next run"
                       if settings.scheduler else "running kernels killed")
            raise Interrupted(e.signum, f"{len(records)} of {len(jobs)} recorded; {running}; "
                                        f"the same command grades the rest") from None


def _autograde(ws, limits, isolate, students, settings, jobs, records):
    """autograde's work; `jobs` and `records` fill up as it goes (an interruption counts them)."""
    ws = Path(ws).resolve()
    if isolate is None:
        isolate, why = sandbox.available()
        if not isolate:
            log.warning(f"WARNING: submissions run WITHOUT isolation: {why}")
    limits = replace(limits or sandbox.Limits(), threads=settings.threads_per_kernel)
    cfg = nbg.config(ws)
    fingerprints, skipped = {}, 0
    for student, assignment, path in submitted(ws):
        if students is not None and student not in students:
            continue
        if assignment not in fingerprints:
            fingerprints[assignment] = submission.fingerprint(assignment)
        old, sha = results.load_one(ws, student, assignment), task.sha256_file(path)
        if not settings.force and results.is_current(old, sha, fingerprints[assignment]):
            skipped += 1      # a record on disk is in the gradebook too: it is written after recording
            continue
        jobs.append(task.Job(student, assignment, str(path), str(ws), limits, isolate,
                             fingerprints[assignment], sha, kernels_at_once=settings.workers))
    prepare_assignments(ws, {j.assignment for j in jobs})
    t0 = time.perf_counter()
    if not jobs:
        log.info(summary(records, skipped, 0.0))
        return records
    with _backend(settings, jobs) as (finished, kernels_at_once, tries):
        log.info(_threads_line(settings, limits, kernels_at_once, tries))
        bar = tqdm(total=len(jobs), unit="submission", disable=_no_bar(settings), file=sys.stderr,
                   desc="grading", dynamic_ncols=True)
        counts = Counter()
        with bar:
            for r in finished:
                _record(ws, cfg, r)
                records.append(r)
                check_interrupted()   # a signal that came while a library (nbgrader, SQLAlchemy) ran
                counts[r.status] += 1
                counts["flagged"] += bool(r.flags)
                bar.set_postfix(graded=counts["graded"], failed=counts["failed"], flagged=counts["flagged"],
                                refresh=False)
                bar.update()
    log.info(summary(records, skipped, time.perf_counter() - t0))
    return records


def _no_bar(settings):
    return (not sys.stderr.isatty()) if settings.progress is None else not settings.progress


@contextlib.contextmanager
def _backend(settings, jobs):
    """(iterator of records, kernels at once per machine, starts allowed) on the chosen backend.

    Left early (the batch interrupted), the iterator is closed first: that kills what it runs."""
    if not (settings.cluster or settings.scheduler):
        records = pool.grade(jobs, settings.workers, settings.max_tries, check_interrupted)
        with contextlib.closing(records):
            yield records, {"this machine": settings.workers}, settings.max_tries
        return
    with cluster.connect(settings.scheduler, settings.cluster, settings.max_tries) as client:
        records = cluster.grade(client, jobs, check_interrupted)
        with contextlib.closing(records):
            yield records, cluster.kernels_per_host(client), cluster.tries_allowed(client)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the batch; raised in its main thread by `stopped_by_signals`.

    A KeyboardInterrupt, so that libraries take it for the user stopping them (Dask cancels what
    it waited for, SQLAlchemy drops the connection it interrupted) and pass it on."""

    def __init__(self, signum, detail=""):
        super().__init__(signum)
        self.signum, self.detail = signum, detail   # detail: where the batch stopped, what is kept

    @property
    def name(self):
        return signal.Signals(self.signum).name

    @property
    def status(self):
        return 128 + self.signum       # as a shell reports a command a signal ended: 130, 143

    def __str__(self):
        return f"{self.name}: {self.detail}" if self.detail else self.name


_signalled = []   # the signal that stopped this process's batch, once one has


def _on_signal(signum, frame):
    if not _signalled:     # a second signal while the batch stops changes nothing
        _signalled.append(signum)
        raise Interrupted(signum)


def check_interrupted():
    """Raise Interrupted again if a signal has stopped the batch. The handler raises it wherever the
    main thread is, and code there may drop it (nbgrader's log capture catches everything; an
    exception in a finalizer is only printed): the batch calls this after such code, and its
    backends between their waits for results."""
    if _signalled:
        raise Interrupted(_signalled[0])


@contextlib.contextmanager
def stopped_by_signals():
    """While this lasts, SIGINT and SIGTERM raise Interrupted in the main thread.

    Whatever this process inherited is replaced: a batch started with SIGINT ignored (a
    background job of a shell script: `... &`) or with the signals blocked stops all the same.
    Outside the main thread (a hub's request, a test's thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    if before[signal.SIGINT] is not _on_signal:   # the outermost: a new batch
        _signalled.clear()
    try:
        for s in STOP_SIGNALS:
            signal.signal(s, _on_signal)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)   # one pending since a blocked start arrives now
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)


def _threads_line(settings, limits, kernels_at_once, tries):
    if limits.threads is not None:
        rule = f"{limits.threads} (--threads-per-kernel)"
    elif not (settings.cluster or settings.scheduler):
        rule = (f"{sandbox.threads_per_kernel(settings.workers)} = {sandbox.usable_cores()} cores / "
                f"{settings.workers} worker(s), at least 1")
    else:
        hosts = ", ".join(f"{h}: {n}" for h, n in sorted(kernels_at_once.items()))
        rule = f"each machine's cores / its kernels at once, at least 1 (kernels at once: {hosts})"
    return (f"grading on the {settings.backend}; threads per kernel for torch, OpenMP, MKL and numba: "
            f"{rule}; a submission is started at most {tries} time(s)")


def summary(records, skipped, wall):
    """The batch in numbers: per status, flagged, seconds per notebook, threads per kernel."""
    status = Counter("needs manual grading" if r.status == "graded" and r.needs_manual else r.status
                     for r in records)
    flagged = sum(bool(r.flags) for r in records)
    lines = [f"graded {len(records)} submission(s) in {wall:.1f} s"
             + (f"; {skipped} already had a current result (--force regrades them)" if skipped else ""),
             f"  graded {status['graded']}  needs manual grading {status['needs manual grading']}  "
             f"failed {status['failed']}  flagged {flagged}"]
    ran = {}
    for r in records:
        if r.executed:
            ran.setdefault(r.assignment, []).append(r)
    for a, rs in sorted(ran.items()):
        s = [r.seconds for r in rs]
        threads = "/".join(str(t) for t in sorted({r.threads for r in rs}, key=str))
        lines.append(f"  {a:<20} {len(s):>4} run, {statistics.median(s):6.1f} s per notebook (median; "
                     f"min {min(s):.1f}, max {max(s):.1f}), {threads} thread(s) per kernel")
    for r in records:
        if r.status == "failed":
            lines.append(f"  failed: {r.student_id} {r.assignment}: {r.reason}")
    return "\n".join(lines)


def _record(ws, cfg, r):
    """One finished submission: its scores, time and late penalty into the gradebook (one
    session), then its record written, once. Only the process that started the batch calls this."""
    with results.writer_lock(ws):
        gradebook.record(ws, r, cfg)
        results.save(ws, r)
        results.append_history(ws, r, late.submitted_at(ws, r.student_id, r.assignment))
