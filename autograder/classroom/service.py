"""The hub's grading service: every submission graded as it arrives, its feedback where nbgrader's
*Fetch Feedback* finds it, within seconds, and nothing lost under a deadline rush.

`python -m autograder serve --workspace <course>` runs it; `python -m autograder hub` makes
JupyterHub start it as a managed service (started with the hub, restarted if it dies; as root,
because the jail needs it). A pass, every `poll_s` seconds (at most 2):

1. **Notice.** The exchange's inbound folder is read with the checks of `collect --exchange`
   (autograder.grading.collect.inbound: the folder and its notebook belong to the account the
   submission is named for; links refused). For every student and assignment that grades on
   submit (autograder.classroom.on_submit) only the latest submission counts, nbgrader's rule: an
   older one not graded yet is superseded.
2. **Choose.** The queue is fair between students: the next grading goes to the student served
   longest ago (round-robin by student), and of a student's assignments the newest submission
   first. One grading per student and assignment runs at a time. Before the deadline a grading
   takes a token of the student's budget; a submission that finds none gets a page saying when it
   will be graded, and waits.
3. **Grade** through the one hardened path: the submission is placed in the workspace as
   `collect` places it and graded by `autograder.grading.task.run` (jailed kernel, guard, scan) on a
   long-lived local pool (autograder.grading.pool.Workers), or on Dask (`--cluster local:N`,
   `--scheduler tcp://HOST:8786`: autograder.grading.cluster.Stream). A file whose record is current (same
   sha256, same course) is never graded again; only its feedback is published for that submission.
4. **Record and answer.** Scores go into the gradebook and the record is written, once, as the
   batch does (autograder.grading.autograde._record, under the workspace's writer lock); then the
   feedback page is written with nbgrader's feedback layout and released with nbgrader's own
   release_feedback (the file is named by nbgrader's hash of the submission's secret). Before the
   deadline the page shows hidden checks only as counts (autograder.reports.feedback); once the
   deadline has passed, every page of the assignment is released again in full.

Faults. The service's state (`<workspace>/service/state.json`: what was handled, what runs, the
budgets) is written after every change; killed at any point and started again, it grades what
was running again without taking another token, and never records a file twice. A grader error
(not the submission's fault) is retried once, then the student's page says "could not be graded
yet: the course staff has been told" (never a zero), the status lists it until the submission is
graded, and the record is marked for the next batch. A submission that kills its worker is
failed after the pool's tries.

`python -m autograder status --live` reads `<workspace>/service/status.json`: queue length, what
is being graded, how many were graded in the last hour, median and p95 seconds from submit to
feedback, failures.
"""

import contextlib
import datetime
import json
import logging
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook

from autograder import nbg
from autograder.classroom import exchange, on_submit
from autograder.errors import CourseError
from autograder.grading import autograde, cluster, collect, pool, results, sandbox, submission, task
from autograder.reports import feedback

log = logging.getLogger(__name__)

STATE, STATUS = "state.json", "status.json"
HISTORY_S = 3600            # graded in the last hour: what status --live reports
GRADER_RETRIES = 1          # a grader error is tried once more before the student is told


@dataclass
class ServiceSettings:
    workspace: str
    workers: int = 2
    max_tries: int = 3
    poll_s: float = 1.0
    limits: sandbox.Limits | None = None
    isolate: bool | None = None          # None: jailed whenever the jail can be made
    passes: int | None = None            # stop after this many passes (tests); None: until stopped
    cluster: str | None = None           # "local:N": grade on a Dask LocalCluster started here
    scheduler: str | None = None         # "tcp://HOST:8786": grade on a running Dask cluster

    def __post_init__(self):
        if not 0 < self.poll_s <= 2:
            raise ValueError("poll_s must be in (0, 2] seconds: a submission is noticed within 2 s")
        autograde.Settings(workers=self.workers, max_tries=self.max_tries, cluster=self.cluster,
                           scheduler=self.scheduler)     # the same checks as a batch

    @property
    def backend(self):
        return autograde.Settings(workers=self.workers, cluster=self.cluster, scheduler=self.scheduler).backend


@dataclass
class Pending:
    """The latest submission of one student and assignment, not handled yet."""
    student: str
    assignment: str
    entry: Path                    # its folder in the exchange's inbound
    submitted: float               # epoch seconds of nbgrader's timestamp.txt
    sha256: str = ""               # of its notebook, once placed in the workspace

    @property
    def key(self):
        return f"{self.student}/{self.assignment}"


@dataclass
class State:
    """What the service has done, on disk after every change (only the service writes it)."""
    handled: dict = field(default_factory=dict)     # inbound folder name -> {"outcome", "sha256", "at"}
    running: dict = field(default_factory=dict)     # inbound folder name -> {"key", "tries", "started"}
    buckets: dict = field(default_factory=dict)     # "student/assignment" -> Bucket.to_dict()
    served: dict = field(default_factory=dict)      # student -> turn of their last grading (round-robin)
    turn: int = 0
    waiting: dict = field(default_factory=dict)     # inbound folder name -> epoch of the promised grading
    full_released: list = field(default_factory=list)   # assignments released in full after their deadline
    history: list = field(default_factory=list)     # recent gradings: {"key", "entry", "status", "latency_s", "at"}
    failures: list = field(default_factory=list)    # grader errors the staff must look at

    @classmethod
    def load(cls, folder):
        try:
            data = json.loads((Path(folder) / STATE).read_text())
        except (FileNotFoundError, ValueError):
            return cls()
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, folder):
        _write_json(Path(folder) / STATE, self.__dict__)


def _write_json(out, data):
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, default=str)
    os.chmod(tmp, 0o640)
    os.replace(tmp, out)


def _epoch(naive_utc):
    return naive_utc.replace(tzinfo=datetime.UTC).timestamp()


def _utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).replace(tzinfo=None)


class Service:
    def __init__(self, settings):
        self.s = settings
        self.ws = Path(settings.workspace).resolve()
        self.folder = self.ws / "service"
        self.state = State.load(self.folder)
        self.cfg = nbg.config(self.ws)
        self.api = nbg.api(self.ws)
        root, course = exchange.course_exchange(self.ws)
        self.course_dir = root / course
        self.workers = pool.Workers(settings.workers, settings.max_tries)
        isolate = settings.isolate
        if isolate is None:
            isolate, why = sandbox.available()
            if not isolate:
                log.warning(f"WARNING: submissions run WITHOUT isolation: {why}")
        self.isolate = isolate
        self.limits = settings.limits or sandbox.Limits()
        self.jobs = {}            # inbound folder name -> (Pending, Job) of what runs
        self.refused = set()      # inbound folders already reported as refused
        self.fingerprints = {}    # assignment -> course fingerprint, this pass
        self.prepared = set()     # course fingerprints recorded in the gradebook
        self.placed = {}          # inbound folder name -> sha256 of its notebook in ws/submitted

    # --- the loop ------------------------------------------------------------------------
    def run(self, until=None):
        """Pass after pass until stopped (SIGINT or SIGTERM: what JupyterHub sends), `passes` run, or
        `until()` (a callable, checked after each pass) is true."""
        log.info(f"grading service on {self.ws}: the {self.s.backend}, a pass every {self.s.poll_s:g} s")
        n = 0
        with autograde.stopped_by_signals(), contextlib.ExitStack() as stack:
            if self.s.cluster or self.s.scheduler:
                client = stack.enter_context(cluster.connect(self.s.scheduler, self.s.cluster, self.s.max_tries))
                self.workers = cluster.Stream(client)
            try:
                while self.s.passes is None or n < self.s.passes:
                    self.one_pass()
                    n += 1
                    if until is not None and until():
                        break
            finally:
                self.workers.close()     # kernels die with their workers; what ran is graded next start
                self.jobs = {}           # still in state.running: the next run resumes them
                self.state.save(self.folder)
        return self.state

    def one_pass(self):
        self.fingerprints = {}    # the course may change between passes (a new release)
        rules = {a: r for a, r in on_submit.load(self.ws).items() if r.enabled}
        due = self._due_dates(rules)
        now = time.time()
        pending = self._pending(rules)
        self._resume(pending)
        self._dispatch(pending, rules, due, now)
        self._publish_waiting(pending, rules, due, now)
        for record in self.workers.finished(timeout=self.s.poll_s):
            self._finish(record, rules, due)
        self._release_after_deadline(rules, due)
        self._write_status(pending)
        autograde.check_interrupted()

    # --- 1. notice -----------------------------------------------------------------------
    def _pending(self, rules):
        """{key: Pending} of the latest submission of every student and assignment not handled yet."""
        if not rules or not (self.course_dir / "inbound").is_dir():
            return {}
        latest, problems = collect.inbound(self.course_dir)
        for student, assignment, why in problems:
            if (student, assignment, why) not in self.refused:
                self.refused.add((student, assignment, why))
                log.warning(f"refused a submission of {student} {assignment}: {why}")
        out = {}
        for (student, assignment), entry in latest.items():
            if assignment not in rules or entry.name in self.state.handled:
                continue
            out[f"{student}/{assignment}"] = Pending(student, assignment, entry, _submitted_at(entry))
        return out

    def _resume(self, pending):
        """Gradings the last run of the service had started and not finished: run them first."""
        for name, info in list(self.state.running.items()):
            if name in self.jobs:
                continue
            p = pending.get(info["key"])
            if p is None or p.entry.name != name:     # superseded or gone: forget it
                del self.state.running[name]
                continue
            if self.workers.free > 0:
                log.info(f"resuming {info['key']} ({name}): the service stopped while it was graded")
                self._start(p, tries=info.get("tries", 1))

    # --- 2. choose -----------------------------------------------------------------------
    def _order(self, pending):
        busy = {p.key for p, _ in self.jobs.values()} | set(self.jobs)
        return fair_order(pending.values(), self.state.served, busy)

    def _dispatch(self, pending, rules, due, now):
        for p in self._order(pending):
            if self.workers.free <= 0:
                return
            if p.entry.name in self.state.running:
                continue                     # started before the service stopped: _resume runs it
            rule = rules[p.assignment]
            after = due.get(p.assignment) is not None and _utc(now) >= due[p.assignment]
            if self._current(p):
                continue
            bucket = self._bucket(p.key)
            budget = None if after else rule.bucket
            if not bucket.take(budget, now):
                continue                     # waits: _publish_waiting tells the student when
            self.state.buckets[p.key] = bucket.to_dict()
            self.state.waiting.pop(p.entry.name, None)
            self._start(p, tries=1)

    def _bucket(self, key):
        return on_submit.Bucket.from_dict(self.state.buckets.get(key, {}))

    def _place(self, p):
        """The submission into ws/submitted, as `collect` places it (once); its sha256, or None if refused."""
        if p.entry.name in self.placed:
            return self.placed[p.entry.name]
        data = collect._read_own(p.entry / f"{p.assignment}.ipynb", p.entry.lstat().st_uid)
        problems = []
        if not isinstance(data, bytes) or not collect._place(self.ws, p.student, p.assignment, data, problems,
                                                              origin=p.entry):
            why = data if not isinstance(data, bytes) else problems[0][2]
            log.warning(f"refused {p.entry.name}: {why}")
            self.state.handled[p.entry.name] = {"outcome": "refused", "why": why, "at": time.time()}
            return None
        sha = task.sha256_file(self.ws / "submitted" / p.student / p.assignment / f"{p.assignment}.ipynb")
        self.placed = {n: v for n, v in self.placed.items() if not n.startswith(f"{p.student}+{p.assignment}+")}
        self.placed[p.entry.name] = sha
        return sha

    def _fingerprint(self, assignment):
        if assignment not in self.fingerprints:
            self.fingerprints[assignment] = submission.fingerprint(assignment)
        return self.fingerprints[assignment]

    def _current(self, p):
        """A resubmission of a file that is graded already: publish its feedback, grade nothing."""
        sha = self._place(p)
        if sha is None:
            return True
        record = results.load_one(self.ws, p.student, p.assignment)
        p.sha256 = sha
        if not results.is_current(record, sha, self._fingerprint(p.assignment)):
            return False
        self._answer(p, record)
        self.state.handled[p.entry.name] = {"outcome": "current", "sha256": sha, "at": time.time()}
        self.state.save(self.folder)
        return True

    def _start(self, p, tries):
        if self._fingerprint(p.assignment) not in self.prepared:
            autograde.prepare_assignments(self.ws, [p.assignment])
            self.prepared.add(self._fingerprint(p.assignment))
        sha = p.sha256 or self._place(p)
        if sha is None:
            return
        path = self.ws / "submitted" / p.student / p.assignment / f"{p.assignment}.ipynb"
        job = task.Job(p.student, p.assignment, str(path), str(self.ws), self.limits, self.isolate,
                       self._fingerprint(p.assignment), sha, kernels_at_once=self.s.workers)
        self.workers.submit(job)
        self.jobs[p.entry.name] = (p, job)
        self.state.running[p.entry.name] = {"key": p.key, "tries": tries, "started": time.time()}
        self.state.turn += 1
        self.state.served[p.student] = self.state.turn
        self.state.save(self.folder)
        log.info(f"grading {p.key} ({p.entry.name})")

    # --- 3./4. record and answer -----------------------------------------------------------
    def _finish(self, record, rules, due):
        name = next((n for n, (p, j) in self.jobs.items()
                     if j.student == record.student_id and j.assignment == record.assignment), None)
        if name is None:
            return
        p, job = self.jobs.pop(name)
        info = self.state.running.pop(name, {"tries": 1})
        if record.retry and info.get("tries", 1) <= GRADER_RETRIES:
            log.warning(f"grader error on {p.key}, trying once more: {record.reason}")
            self.state.save(self.folder)
            if p.entry.exists():
                self._start(p, tries=info.get("tries", 1) + 1)
            return
        autograde._record(self.ws, self.cfg, record)     # under the workspace's writer lock
        if record.retry:
            self.state.failures.append({"key": p.key, "entry": name, "reason": record.reason, "at": time.time()})
            log.error(f"could not grade {p.key} ({name}): {record.reason}")
        self._answer(p, record, rules.get(p.assignment), due.get(p.assignment))
        latency = time.time() - p.submitted
        self.state.handled[name] = {"outcome": record.status, "sha256": record.submission_sha256,
                                    "at": time.time()}
        self.state.history.append({"key": p.key, "entry": name, "status": record.status,
                                   "retry": record.retry, "latency_s": round(latency, 2), "at": time.time()})
        self.state.history = [h for h in self.state.history if h["at"] > time.time() - 24 * 3600]
        self.state.save(self.folder)
        log.info(f"graded {p.key}: {record.status}{' (' + record.reason + ')' if record.reason else ''}; "
                 f"feedback {latency:.1f} s after submitting")

    def _context(self, p, rule, due, now):
        rule = rule or on_submit.Rule(p.assignment)
        after = due is not None and _utc(now) >= due
        budget = self._bucket(p.key).describe(rule.bucket, now, after_deadline=after)
        return feedback.Context(mode=rule.mode(due, _utc(now)), rule=rule.sentence(due, _utc(now)), budget=budget,
                                submitted=_utc(p.submitted).strftime("%Y-%m-%d %H:%M:%S UTC"))

    def _answer(self, p, record, rule=None, due=None):
        """Write the feedback page of `record` for the submission `p` and release it (nbgrader)."""
        if rule is None:
            rules = on_submit.load(self.ws)
            rule, due = rules.get(p.assignment), self._due_dates(rules).get(p.assignment)
        page = feedback.render(record, self._context(p, rule, due, time.time()))
        self._release(p, page)

    def _release(self, p, page):
        """A page for the submission in folder p.entry, where Fetch Feedback looks for it: with that
        submission's own timestamp and secret (read from the exchange, never through a link)."""
        uid, files = p.entry.lstat().st_uid, {}
        for name in ("timestamp.txt", "submission_secret.txt"):
            data = collect._read_own(p.entry / name, uid, 4096)
            if not isinstance(data, bytes):
                log.warning(f"no feedback for {p.entry.name}: {data}")
                return False
            files[name] = data
        return self._publish(p.student, p.assignment, page, files)

    def _publish(self, student, assignment, page, files):
        """Write the page into nbgrader's feedback folder of the workspace with the submission's
        timestamp.txt and submission_secret.txt (`files`), then run nbgrader's release_feedback,
        which names the released file by its hash of the secret."""
        fb = self.ws / "feedback" / student / assignment
        fb.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (fb / name).write_bytes(data)
        (fb / f"{assignment}.html").write_text(page)
        with contextlib.redirect_stdout(None):
            result = self.api.release_feedback(assignment, student)
        if not result["success"]:
            log.error(f"nbgrader could not release feedback of {student}/{assignment}: "
                      f"{result.get('log', '')[-500:]}")
            return False
        return True

    def _publish_waiting(self, pending, rules, due, now):
        """A page for each submission that waits for a token: when it will be graded."""
        for p in pending.values():
            if p.entry.name in self.jobs or p.entry.name in self.state.handled:
                continue
            rule, d = rules[p.assignment], due.get(p.assignment)
            if d is not None and _utc(now) >= d:
                continue                   # after the deadline nothing waits for a token
            bucket = self._bucket(p.key)
            at = bucket.next_at(rule.bucket, now) if rule.bucket else now
            if at <= now or math.isclose(self.state.waiting.get(p.entry.name, -1), at, abs_tol=1):
                continue
            ctx = self._context(p, rule, due.get(p.assignment), now)
            page = feedback.render_waiting(p.student, p.assignment, on_submit.clock(at), ctx)
            if self._release(p, page):
                self.state.waiting[p.entry.name] = at
                self.state.save(self.folder)
                log.info(f"{p.key} waits for a grading until {on_submit.clock(at)}")

    def _release_after_deadline(self, rules, due):
        """Once an assignment's deadline has passed, its pages go out again in full."""
        now = _utc(time.time())
        for a, rule in rules.items():
            d = due.get(a)
            if d is None or now < d:
                if a in self.state.full_released:
                    self.state.full_released.remove(a)    # the deadline moved later
                continue
            if a in self.state.full_released or rule.before_deadline == feedback.FULL:
                continue
            n = 0
            for record in results.load(self.ws).values():
                if record.assignment != a:
                    continue
                sub = self.ws / "submitted" / record.student_id / a
                if not (sub / "submission_secret.txt").exists():
                    continue
                files = {name: (sub / name).read_bytes() for name in ("timestamp.txt", "submission_secret.txt")}
                ctx = feedback.Context(mode=feedback.FULL, rule=rule.sentence(d, now))
                n += self._publish(record.student_id, a, feedback.render(record, ctx), files)
            self.state.full_released.append(a)
            self.state.save(self.folder)
            log.info(f"{a}: the deadline has passed; full feedback released for {n} submission(s)")

    def _due_dates(self, rules):
        out = {}
        with Gradebook(self.cfg.CourseDirectory.db_url, self.cfg.CourseDirectory.course_id) as gb:
            for a in rules:
                try:
                    out[a] = gb.find_assignment(a).duedate
                except Exception:     # MissingEntry: not published yet
                    out[a] = None
        return out

    # --- status ---------------------------------------------------------------------------
    def _write_status(self, pending):
        now = time.time()
        self.state.failures = still_failing(self.ws, self.state.failures)
        hour = [h for h in self.state.history if h["at"] > now - HISTORY_S]
        lat = sorted(h["latency_s"] for h in hour)
        waiting = [p.key for p in pending.values() if p.entry.name not in self.jobs]
        status = {"updated": now, "pid": os.getpid(), "workers": self.s.workers,
                  "queue": len(waiting), "waiting": sorted(waiting),
                  "grading": sorted(p.key for p, _ in self.jobs.values()),
                  "graded_last_hour": len(hour),
                  "median_latency_s": statistics.median(lat) if lat else None,
                  "p95_latency_s": lat[min(len(lat) - 1, math.ceil(0.95 * len(lat)) - 1)] if lat else None,
                  "failures": self.state.failures[-20:]}
        _write_json(self.folder / STATUS, status)


def still_failing(ws, failures):
    """The grader errors the staff must still look at: a failure is dropped once its submission's
    record is no longer marked for another grading (a batch or a new submission graded it)."""
    out = []
    for f in failures:
        student, assignment = f["key"].split("/", 1)
        record = results.load_one(ws, student, assignment)
        if record is None or record.retry:
            out.append(f)
    return out


def fair_order(pending, served, busy=()):
    """The order in which to grade `pending` (Pending): round-robin by student, the student served
    longest ago first (`served`: student -> the turn of their last grading; never served first, then
    whoever has waited longest); of each student only their newest submission, so one student
    submitting ten times cannot delay the others. Keys or folder names in `busy` are being graded."""
    by_student = {}
    for p in pending:
        if p.key not in busy and p.entry.name not in busy:
            by_student.setdefault(p.student, []).append(p)
    students = sorted(by_student, key=lambda s: (served.get(s, -1), min(p.submitted for p in by_student[s]), s))
    return [max(by_student[s], key=lambda p: p.submitted) for s in students]


def _submitted_at(entry):
    """nbgrader's time of the submission (timestamp.txt, else the folder name's), epoch seconds."""
    from nbgrader.utils import parse_utc
    data = collect._read_own(entry / "timestamp.txt", entry.lstat().st_uid, 4096)
    try:
        when = parse_utc(data.decode().strip()) if isinstance(data, bytes) else None
    except ValueError:
        when = None
    if when is None:
        when = parse_utc(entry.name.split("+")[2])
    return _epoch(when)


def read_status(ws):
    """status.json of the service on this workspace, or None if it never ran here."""
    try:
        return json.loads((Path(ws) / "service" / STATUS).read_text())
    except (FileNotFoundError, ValueError):
        return None


def live_lines(ws):
    """What `status --live` prints and the instructors' hub page shows (autograder.classroom.status_page):
    the service's last pass, queue, latency, failures and each assignment's rule, as lines."""
    st = read_status(ws)
    if st is None:
        raise CourseError(f"no grading service has run on {ws} (python -m autograder hub starts one; "
                          f"python -m autograder on-submit ID turns it on for an assignment)")
    age = time.time() - st["updated"]
    lat = (f"median {st['median_latency_s']:.1f} s, p95 {st['p95_latency_s']:.1f} s from submit to feedback"
           if st["median_latency_s"] is not None else "no grading in the last hour")
    lines = [f"grading service (pid {st['pid']}, {st['workers']} worker(s)), last pass {age:.0f} s ago"
             + ("  [NOT RUNNING? no pass for over a minute]" if age > 60 else ""),
             f"queue {st['queue']}  grading {len(st['grading'])}  graded in the last hour {st['graded_last_hour']}  "
             f"failures {len(st['failures'])}",
             f"latency: {lat}"]
    lines += [f"  grading  {key}" for key in st["grading"]]
    lines += [f"  waiting  {key}" for key in st["waiting"]]
    lines += [f"  failure  {f['key']}: {f['reason']}" for f in st["failures"]]
    lines += [f"  on submit: {a:<20} {'on' if rule.enabled else 'off'}, budget {rule.budget}, "
              f"before the deadline: {rule.before_deadline}" for a, rule in sorted(on_submit.load(ws).items())]
    return lines


def serve(settings):
    return Service(settings).run()
