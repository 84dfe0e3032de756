"""What the hub tests need around a class: throw-away accounts (removed afterwards), commands run
as a student or instructor would run them, a private PostgreSQL server under build/, and the
submissions of three students:

    A  the solution of every answer cell                          -> full automatic marks
    B  two exercises wrong (tests/wrong/), the rest right        -> loses points
    C  code that tries to read A's submission, in an answer cell -> the read fails; flagged

Accounts, groups and the course prefix carry a random tag, so runs from several checkouts on one
machine never meet; the students' environment is shared through its cache (autograder.classroom.studentenv).
"""

import ast
import csv
import datetime
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

import nbtools
from autograder import contract, paths
from autograder.classroom import hub, roster, studentenv
from autograder.errors import CourseError
from nbtools import in_ci

ASSIGNMENT = "01_self_attention"
ENVS = Path(os.environ.get("ARCHLAB_HUB_ENVS", "/var/cache/archlab-hub/envs"))
COURSE_ID = "architectures-workbook"


def pg_bin():
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def require_hub(postgres=False):
    """Skip (or fail in CI) when this machine cannot host a hub: root, useradd, the proxy, Python."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root (the hub creates accounts)")
    if not shutil.which("useradd"):
        problems.append("no useradd")
    try:
        hub.proxy_command()
    except CourseError as e:
        problems.append(str(e))
    try:
        studentenv.system_python()
    except CourseError as e:
        problems.append(str(e))
    if postgres and pg_bin() is None:
        problems.append("no PostgreSQL server binaries (scripts/install_hub.sh installs postgresql)")
    if problems:
        msg = "the course hub cannot run here: " + "; ".join(problems)
        if in_ci():
            pytest.fail(msg + " [CI is set, so this is a failure]", pytrace=False)
        pytest.skip(msg)


@dataclass
class Klass:
    tag: str
    prefix: Path
    roster: Path
    group: str
    members: list
    ids: dict = field(default_factory=dict)     # "A", "B", "C", "I" -> login

    @property
    def course(self):
        return self.prefix / "course"


def say(config, line):
    """A line in pytest's own output, even when output is captured (CI reads the wall time)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


def make_klass(tmp, extra_students=0):
    """Students A, B, C and instructor I; `extra_students` more students S0, S1, ... (a rush)."""
    tag = "t" + secrets.token_hex(3)
    members = [roster.Member(f"{tag}-a", "Ada Able", "student", f"S-{tag}-1"),
               roster.Member(f"{tag}-b", "Bea Baker", "student", f"S-{tag}-2"),
               roster.Member(f"{tag}-c", "Cyd Crook", "student", f"S-{tag}-3"),
               roster.Member(f"{tag}-i", "Ivy Instructor", "instructor", "")]
    labels = list("ABCI")
    for n in range(extra_students):
        members.append(roster.Member(f"{tag}-s{n}", f"Sam Student{n}", "student", f"S-{tag}-x{n}"))
        labels.append(f"S{n}")
    path = roster.write(members, Path(tmp) / "roster.csv")
    return Klass(tag=tag, prefix=Path(f"/var/tmp/archlab-hub-{tag}"), roster=path, group=f"{tag}-staff",
                 members=members, ids=dict(zip(labels, [m.id for m in members])))


class RepositoryMode:
    """The hub closes the repository (root:<instructors> 0750); put it back as it was."""

    def __init__(self):
        st = os.stat(paths.ROOT)
        self.mode, self.gid = st.st_mode & 0o7777, st.st_gid

    def restore(self):
        os.chown(paths.ROOT, -1, self.gid)
        os.chmod(paths.ROOT, self.mode)


def user_pids(uids):
    pids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uid_line = next(line for line in status.read_text().splitlines() if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if int(uid_line.split()[1]) in uids:
            pids.append(int(status.parent.name))
    return pids


def remove_klass(k):
    """Everything the class left on the machine: its users' processes, accounts, group, prefix."""
    uids = set()
    for m in k.members:
        try:
            uids.add(pwd.getpwnam(m.id).pw_uid)
        except KeyError:
            pass
    for _ in range(3):      # processes this test started as its users (servers, kernels, PostgreSQL)
        pids = user_pids(uids)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not pids:
            break
        time.sleep(1)
    for m in k.members:
        subprocess.run(["userdel", "--remove", m.id], capture_output=True)
    subprocess.run(["groupdel", k.group], capture_output=True)
    shutil.rmtree(k.prefix, ignore_errors=True)


def env_of(layout_env, prefix, user, role):
    """The environment a user's server gives their kernel (autograder.classroom.hub)."""
    pw = pwd.getpwnam(user)
    return {"HOME": pw.pw_dir, "USER": user, "LOGNAME": user, "PATH": f"{layout_env}/bin:/usr/bin:/bin",
            "JUPYTER_CONFIG_PATH": str(Path(prefix) / "etc" / role), "PYTHONPATH": str(Path(prefix) / "edition"),
            **contract.KERNEL_ENV}


def as_user(user, env, *cmd, timeout=300):
    """Run cmd as `user` (runuser), in their home, with exactly `env`."""
    home = pwd.getpwnam(user).pw_dir
    return subprocess.run(["runuser", "-u", user, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()], *cmd],
                          cwd=home, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# what the students write
# ---------------------------------------------------------------------------------------------
def answers(which, assignment=ASSIGNMENT, spy_paths=()):
    """{grade_id: source} of student A (correct), B (wrong) or C (spy)."""
    if which == "A":
        return nbtools.solution_answers(assignment)
    if which == "B":
        return {**nbtools.solution_answers(assignment), **{gid: w.code for gid, w in b_wrong(assignment).items()}}
    release = nbtools.release_nb(assignment)
    first = nbtools.answer_ids(release)[0]
    return {first: spy_code(spy_paths) + "\n" + nbtools.cell(release, first).source}


def b_wrong(assignment=ASSIGNMENT):
    """B's mistakes: the solution, but the first wrong answer kept for two exercises (some points lost)."""
    return {gid: next(iter(labels.values())) for gid, labels in list(nbtools.wrong_answers(assignment).items())[:2]}


def wait_for_feedback(course_exchange, student, assignment, timeout=300):
    """Seconds from the student's latest Submit (nbgrader's timestamp.txt) to the moment its feedback
    page appeared in the exchange (named by nbgrader's hash of the submission's secret)."""
    from nbgrader.utils import notebook_hash, parse_utc
    inbound = Path(course_exchange) / "inbound"
    entries = sorted(inbound.glob(f"{student}+{assignment}+*"), key=lambda p: parse_utc(p.name.split("+")[2]))
    assert entries, f"no submission of {student} in {inbound}"
    entry = entries[-1]
    secret = (entry / "submission_secret.txt").read_text()
    page = Path(course_exchange) / "feedback" / f"{notebook_hash(secret=secret, notebook_id=assignment)}.html"
    deadline = time.monotonic() + timeout
    while not page.exists():
        assert time.monotonic() < deadline, f"no feedback for {entry.name} within {timeout} s"
        time.sleep(0.5)
    submitted = parse_utc((entry / "timestamp.txt").read_text().strip())
    return page.stat().st_mtime - submitted.replace(tzinfo=datetime.UTC).timestamp()


SPY_MARK = "SPY-RESULT"


def spy_code(targets):
    """Code that tries to read each path (a folder: list it, then read what is inside)."""
    lines = ["import os", "_spy = {}", f"for _p in {[str(t) for t in targets]!r}:", "    try:",
             "        if os.path.isdir(_p):",
             "            _spy[_p] = [open(os.path.join(_p, _f)).read()[:80] for _f in os.listdir(_p)]",
             "        else:", "            _spy[_p] = open(_p).read()[:80]",
             "    except Exception as _e:", "        _spy[_p] = 'blocked: ' + type(_e).__name__",
             f"print({SPY_MARK!r}, _spy)"]
    return "\n".join(lines)


def spy_result(text):
    """The dict the spy printed, from a process's output or an executed notebook's outputs."""
    if text.lstrip().startswith("{") and '"cells"' in text[:200000]:
        nb = nbformat.reads(text, as_version=4)
        text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", [])
                       if o.get("output_type") == "stream")
    line = next(line for line in text.splitlines() if line.startswith(SPY_MARK))
    return ast.literal_eval(line[len(SPY_MARK):].strip())


def filled(which, spy_paths=()):
    return nbtools.submission(nbtools.release_nb(ASSIGNMENT), answers(which, spy_paths=spy_paths))


def hidden_test_lines(assignment=ASSIGNMENT):
    """The lines of every hidden-test region of the instructor notebook: a page shows none of
    them when contract.shown(these, page) is empty (the one leak rule's significant lines)."""
    return [line for c in nbtools.solution_nb(assignment).cells for line in contract.hidden_lines(c.source)]


def test_points(assignment=ASSIGNMENT):
    sol = nbtools.solution_nb(assignment)
    return sum(contract.points(c) for c in sol.cells if contract.is_test(c))


def cli(*args, timeout=900):
    """python -m autograder ARGS as the instructor runs it (root, from the repository)."""
    r = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=paths.ROOT, capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, f"python -m autograder {' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def canvas_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    return header, {r[2]: dict(zip(header, r)) for r in rows[2:]}   # by SIS User ID


class RunningHub:
    """`python -m autograder hub` in a process group of its own, answering on a free loopback port."""

    def __init__(self, k, log, db_url=None, late_policy="per-day:10"):
        self.k, self.log_path, self.proc = k, Path(log), None
        self.port = hub.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "autograder", "hub", "--roster", str(k.roster), "--port", str(self.port),
                    "--prefix", str(k.prefix), "--envs", str(ENVS), "--course-id", COURSE_ID,
                    "--instructors-group", k.group, "--late-policy", late_policy,
                    *(["--db-url", db_url] if db_url else [])]

    def start(self, timeout=600):
        import urllib.error
        import urllib.request
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.cmd, cwd=paths.ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        t0, deadline = time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the hub exited with {self.proc.returncode}:\n{self.text()[-4000:]}")
            try:
                with urllib.request.urlopen(self.base + "/hub/api", timeout=5) as r:
                    if r.status == 200:
                        self.start_s = time.monotonic() - t0
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(1)
        raise AssertionError(f"the hub did not answer within {timeout} s:\n{self.text()[-4000:]}")

    def text(self):
        return self.log_path.read_text()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)    # JupyterHub stops every user's server, the proxy, the grader
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.log.close()


def grader_pids(course):
    """Pids of the grading service JupyterHub runs on `course`: its command names the course folder
    and its parent is JupyterHub (not the service's own pool workers, nor orphans of a killed one)."""
    def cmdline(pid):
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return []

    def parent(pid):
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return None
    found = []
    for p in Path("/proc").glob("[0-9]*"):
        cmd = cmdline(p.name)
        if b"serve" in cmd and str(course).encode() in cmd and b"autograder" in cmd:
            if any(b"jupyterhub" in part for part in cmdline(parent(p.name))):
                found.append(int(p.name))
    return found


# ---------------------------------------------------------------------------------------------
# a private PostgreSQL server, run by a non-root account (the class's instructor)
# ---------------------------------------------------------------------------------------------
class PrivatePostgres:
    """initdb + pg_ctl under build/pg-<tag>, Unix socket only, trust authentication inside a
    folder only its owner can enter; stop() ends it. When the owner cannot reach build/ (a
    checkout under /root, say), the folder goes to /var/tmp instead, and `moved` says so."""

    def __init__(self, owner, folder):
        folder = Path(folder)
        reach = subprocess.run(["runuser", "-u", owner, "--", "test", "-x", str(folder.parent)], capture_output=True)
        self.moved = reach.returncode != 0
        if self.moved:
            folder = Path("/var/tmp") / f"archlab-{folder.name}"
        self.owner, self.folder, self.bin = owner, folder, pg_bin()
        self.data, self.port = self.folder / "data", 5432
        self.url = f"postgresql://{owner}@/gradebook?host={self.folder}&port={self.port}"

    def _as_owner(self, *cmd):
        r = subprocess.run(["runuser", "-u", self.owner, "--", *cmd], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{' '.join(cmd[:2])} failed:\n{r.stdout}\n{r.stderr}"
        return r

    def start(self):
        pw = pwd.getpwnam(self.owner)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        os.chown(self.folder, pw.pw_uid, pw.pw_gid)
        os.chmod(self.folder, 0o700)
        self._as_owner(str(self.bin / "initdb"), "-D", str(self.data), "--auth=trust", "-U", self.owner,
                       "-E", "UTF8", "--no-sync")
        opts = f"-k {self.folder} -c listen_addresses='' -p {self.port} -c fsync=off"
        self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                       str(self.folder / "server.log"), "-w", "start")
        self._as_owner(str(self.bin / "createdb"), "-h", str(self.folder), "-p", str(self.port), "gradebook")
        return self

    def stop(self):
        if (self.data / "postmaster.pid").exists():
            subprocess.run(["runuser", "-u", self.owner, "--", str(self.bin / "pg_ctl"), "-D", str(self.data),
                            "-m", "fast", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


def read_nb(path):
    return nbformat.read(path, as_version=4)
