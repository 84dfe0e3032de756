"""Graded on submit, without a hub: the grading service (`python -m autograder serve`) on a
workspace with nbgrader's exchange, students submitting and fetching feedback with nbgrader's own
exchange classes (what the Assignments tab's buttons run).

In order, on one service: A's correct notebook and B's typical mistakes come back within
seconds, B's page naming the mistakes and showing hidden checks only as counts; C's third
submission inside the budget's window is kept, told when it will be graded, and graded after the
refill; D's grading survives the service killed with SIGKILL and started again (graded once,
one token); F's grading fails by the grader's fault (tried once more, then "could not be graded
yet", never a zero, listed by status --live); after the deadline the pages go out in full, a
late submission is graded with the late policy, and the instructor's batch (collect --exchange,
autograde) grades only F's, nothing the service graded; the export holds the service's scores.

tests/classroom/test_hub.py runs the same through JupyterHub in a real browser.
"""

import contextlib
import csv
import datetime
import html
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

import exchange_helpers as xh
import hub_helpers as hh
import nbtools
from autograder import contract, nbg, paths
from autograder.classroom import service
from autograder.grading import late, results, sandbox, task
from autograder.reports import feedback

A1 = hh.ASSIGNMENT
BUDGET = "2/1h"            # two gradings, one back every 30 minutes: a third inside the hour waits
QUICK_BUDGET = "2/6s"      # what the instructor changes it to: one back every 3 s
pytestmark = [pytest.mark.skipif(A1 not in paths.present_assignments(), reason=f"{A1} is not among the assignments"),
              pytest.mark.hub, pytest.mark.root, pytest.mark.notebooks, pytest.mark.slow]


class Running:
    """The service as JupyterHub starts it: a process of its own, its log in a file."""

    def __init__(self, ws, log):
        self.ws, self.log = ws, log
        self.proc = None

    def start(self):
        out = open(self.log, "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "autograder", "serve", "--workspace", str(self.ws),
                                      "--workers", "2", "--poll", "0.5"], cwd=paths.ROOT, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        return self

    def stop(self, sig=signal.SIGTERM):
        """The signal to the service's process only, as JupyterHub (or the kernel's OOM killer) sends it:
        its workers and their kernels must go with it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(60)

    def kill_group(self):
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def text(self):
        return self.log.read_text()


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    if os.geteuid() != 0 or not sandbox.available()[0]:
        pytest.skip("the grading service grades in jailed kernels: run as root")
    tmp = tmp_path_factory.mktemp("service")
    ws = tmp / "ws"
    ws.mkdir()
    (ws / "nbgrader_config.py").write_text("\n".join(["c = get_config()  # noqa", *late.parse_policy("per-day:10")]))
    due = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    hh.cli("publish", A1, "--due", due.isoformat(), "--workspace", str(ws))
    hh.cli("on-submit", A1, "--budget", BUDGET, "--workspace", str(ws))
    root = nbg.config(ws).Exchange.root
    students = {x: xh.StudentSide(root, f"s{x.lower()}", tmp / "homes" / x, nbg.config(ws).CourseDirectory.course_id)
                for x in "ABCDEF"}
    svc = Running(ws, tmp / "service.log").start()
    try:
        yield {"ws": ws, "tmp": tmp, "s": students, "svc": svc, "submitted": {}}
    finally:
        svc.stop()
        svc.kill_group()      # anything it left behind (a failing test)


def _wrong(kind):
    return nbtools.submission(nbtools.release_nb(A1), {**nbtools.solution_answers(A1),
                                                       **{g: w.code for g, w in nbtools.first_wrong(A1, kind).items()}})


def _solution(note=""):
    answers = nbtools.solution_answers(A1)
    first = next(iter(answers))
    return nbtools.submission(nbtools.release_nb(A1), {**answers, first: answers[first] + f"\n# {note}"})


def _record(ws, student):
    return results.load_one(ws, student, A1)


def test_feedback_comes_within_seconds_and_names_the_mistake(klass, request):
    s = klass["s"]
    folders = {"A": s["A"].submit(A1, _solution()), "B": s["B"].submit(A1, _wrong("visible"))}
    pages = {}
    for x, folder in folders.items():
        pages[x], waited = s[x].feedback_for(A1, folder, timeout=180)
        hh.say(request.config, f"test_service: {x}'s feedback {waited:.0f} s after its submission was fetched")
        assert waited < 60, f"{x}'s feedback took {waited:.0f} s"
    assert "not passed" not in pages["A"] and "Automatic score so far: " in pages["A"]
    text = html.unescape(pages["B"]).lower()
    wrong = nbtools.first_wrong(A1, "visible")
    for gid, w in wrong.items():
        earlier, keyword = nbtools.built_on(A1).get(gid, ((), None))
        said = keyword if any(e in wrong for e in earlier) else w.visible    # "fix ... first"
        assert said.lower() in text, f"B's page does not name the mistake of {gid}: {said!r}"
    hidden = hh.hidden_test_lines()
    for x in "AB":
        assert not contract.shown(hidden, pages[x]), f"{x}'s page shows hidden test lines"
        assert "hidden checks" in pages[x] and "Until the deadline" in pages[x], pages[x][:800]
        assert "Gradings left: " in pages[x] and " of 2 (one more every 30 minutes)" in pages[x]


def test_a_subtle_mistake_shows_hidden_checks_as_counts_only(klass):
    s, ws = klass["s"], klass["ws"]
    folder = s["E"].submit(A1, _wrong("hidden"))
    klass["submitted"]["E-before"] = folder
    page, _ = s["E"].feedback_for(A1, folder, timeout=180)
    record = _record(ws, "se")
    failed = [t for t in record.tests if not t.passed]
    assert failed and all(t.failed_in == contract.HIDDEN for t in failed), [(t.grade_id, t.failed_in) for t in failed]
    text = html.unescape(page)          # the page escapes quotes and brackets; a message may hold them
    for t in failed:
        assert t.message and t.message.split(": ", 1)[-1][:60] not in text, f"{t.grade_id}'s hidden message shown"
        assert f"{t.hidden_passed} of {t.hidden} pass" in text


def test_beyond_the_budget_a_submission_waits_and_is_graded_after_the_refill(klass):
    s, ws = klass["s"], klass["ws"]
    c = s["C"]
    first = c.submit(A1, _wrong("visible"))
    c.feedback_for(A1, first, timeout=180)
    time.sleep(1.1)      # nbgrader's timestamps: distinct submissions
    second = c.submit(A1, _wrong("hidden"))
    c.feedback_for(A1, second, timeout=180)
    time.sleep(1.1)
    third = c.submit(A1, _solution("third"))
    page, _ = c.feedback_for(A1, third, timeout=60)
    assert "will be graded at" in page and "Gradings left: 0 of 2" in page, page[:1500]
    promised = datetime.datetime.strptime(page.split("will be graded at ")[1][:8], "%H:%M:%S").time()
    now = datetime.datetime.now(datetime.UTC)
    wait = (datetime.datetime.combine(now.date(), promised, datetime.UTC) - now).total_seconds() % 86400
    assert 10 * 60 < wait <= 30 * 60, f"the page promises {promised}, {wait:.0f} s from now"
    time.sleep(3)
    assert "will be graded at" in c.fetch_feedback(A1)[third.split("+")[2]], "graded before a token was back"
    live = hh.cli("status", "--live", "--workspace", str(ws))       # what the instructor sees meanwhile
    assert f"waiting  sc/{A1}" in live and "queue 1 " in live and "budget 2/1h" in live, live
    # the instructor gives tokens back faster: the service reads the rule at every pass, and grades it
    hh.cli("on-submit", A1, "--budget", QUICK_BUDGET, "--workspace", str(ws))
    deadline = time.monotonic() + 120
    while "will be graded at" in page:
        assert time.monotonic() < deadline, "the waiting submission was not graded after the refill"
        time.sleep(1)
        page = c.fetch_feedback(A1)[third.split("+")[2]]
    hh.cli("on-submit", A1, "--budget", BUDGET, "--workspace", str(ws))
    record = _record(ws, "sc")
    inbound = nbg.config(ws).Exchange.root + f"/{nbg.config(ws).CourseDirectory.course_id}/inbound/{third}"
    assert record.submission_sha256 == task.sha256_file(f"{inbound}/{A1}.ipynb"), "the latest is not the one graded"
    assert record.auto_score[0] == record.auto_score[1], "the third (correct) submission should score full marks"
    with Gradebook(nbg.config(ws).CourseDirectory.db_url) as gb:
        assert gb.find_submission(A1, "sc").score == record.auto_score[0]


def test_killed_mid_grade_it_resumes_and_grades_once(klass):
    s, ws, svc = klass["s"], klass["ws"], klass["svc"]
    folder = s["D"].submit(A1, _solution("D"))
    deadline = time.monotonic() + 60
    while "sd/" + A1 not in (service.read_status(ws) or {}).get("grading", []):
        assert time.monotonic() < deadline, "D's grading did not start"
        time.sleep(0.3)
    time.sleep(2)
    killed_at = time.time()
    svc.stop(signal.SIGKILL)
    time.sleep(2)
    assert not _processes_of(ws), f"processes outlived the service: {_processes_of(ws)}"
    state = json.loads((ws / "service" / "state.json").read_text())
    assert folder in state["running"] and folder not in state["handled"]
    svc.start()
    page, _ = s["D"].feedback_for(A1, folder, timeout=180)
    assert "not passed" not in page
    state = json.loads((ws / "service" / "state.json").read_text())
    assert state["handled"][folder]["outcome"] == "graded" and folder not in state["running"]
    assert [h["entry"] for h in state["history"]].count(folder) == 1, "D was recorded twice"
    assert "resuming sd/" in svc.text()
    assert state["buckets"][f"sd/{A1}"]["updated"] < killed_at, "the resumed grading took a second token"


def test_a_grader_error_is_tried_once_more_then_the_student_is_told_and_the_staff_sees_it(klass):
    """The grader's own fault (here: where F's executed notebook goes is a file, as a bad disk or a
    bug would leave it): tried once more, then F's page says it could not be graded yet, with no
    score; status --live lists it; the record is marked for the next batch (which grades it, once
    the staff has mended the fault: the last test)."""
    s, ws, svc = klass["s"], klass["ws"], klass["svc"]
    blocker = task.executed_path(ws, "sf", A1).parent
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("in the way of the executed notebook's folder")
    folder = s["F"].submit(A1, _solution("F"))
    page, _ = s["F"].feedback_for(A1, folder, timeout=180)
    text = html.unescape(page)
    assert feedback.NOT_YET in text and "Automatic score" not in text and "not passed" not in text, text[:1500]
    log = svc.text()
    assert log.count(f"grader error on sf/{A1}, trying once more") == 1, log[-3000:]
    assert f"could not grade sf/{A1} ({folder})" in log, log[-3000:]
    record = _record(ws, "sf")
    assert record.status == "failed" and record.retry and "FileExistsError" in record.reason, record
    live = hh.cli("status", "--live", "--workspace", str(ws))
    assert f"failure  sf/{A1}: grader error: FileExistsError" in live, live
    blocker.unlink()        # the staff mends it; the batch after the deadline grades F


def test_the_service_refuses_what_collect_refuses(klass):
    """A submission in another account's name (a folder named for `nobody`, owned by root) and one
    whose notebook is a link (to a file the student does not own) are refused by the service with
    collect --exchange's reasons: logged, never graded, no record."""
    ws, svc = klass["ws"], klass["svc"]
    inbound = Path(nbg.config(ws).Exchange.root) / nbg.config(ws).CourseDirectory.course_id / "inbound"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    made = []
    for student, link in (("nobody", False), ("sg", True)):
        name = f"{student}+{A1}+{stamp}+{secrets.token_hex(6)}"
        tmp = inbound.parent / f".{name}"          # made aside, then moved in at once, as a whole
        tmp.mkdir()
        (tmp / "timestamp.txt").write_text(stamp)
        (tmp / "submission_secret.txt").write_text(secrets.token_hex(16))
        if link:
            (tmp / f"{A1}.ipynb").symlink_to(paths.SOLUTIONS / A1 / f"{A1}.ipynb")
        else:
            nbformat.write(_solution(student), tmp / f"{A1}.ipynb")
        tmp.rename(inbound / name)
        made.append(inbound / name)
    try:
        want = [f"refused a submission of nobody {A1}: refused a submission in nobody's name owned by root",
                f"refused a submission of sg {A1}: refused {made[1].name}: its {A1}.ipynb is a link"]
        deadline = time.monotonic() + 30
        while not all(w in svc.text() for w in want):
            assert time.monotonic() < deadline, svc.text()[-3000:]
            time.sleep(0.5)
        time.sleep(2)        # a few more passes: still nothing graded
        assert results.load_one(ws, "nobody", A1) is None and results.load_one(ws, "sg", A1) is None
        assert not any(m.name in json.loads((ws / "service" / "state.json").read_text())["running"] for m in made)
    finally:
        for m in made:
            shutil.rmtree(m)


def _processes_of(ws):
    """Processes whose command line names the workspace: the service's workers and their kernels."""
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(ws) in cmd:
                found.append((int(p), cmd[:120]))
    return found


def test_after_the_deadline_everything_in_full_late_policy_and_nothing_twice(klass):
    s, ws, svc = klass["s"], klass["ws"], klass["svc"]
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)
    hh.cli("publish", A1, "--due", past.isoformat(), "--workspace", str(ws))
    # E's earlier page (subtle mistakes, counts only) is released again in full
    before = klass["submitted"]["E-before"]
    deadline = time.monotonic() + 60
    while True:
        page = s["E"].fetch_feedback(A1)[before.split("+")[2]]
        if "after the deadline" in page:
            break
        assert time.monotonic() < deadline, "the full feedback was not released after the deadline"
        time.sleep(1)
    record = _record(ws, "se")
    shown = [t for t in record.tests if not t.passed and t.message.split(": ", 1)[-1][:60] in html.unescape(page)]
    assert shown, "after the deadline the hidden checks' messages are shown"
    assert feedback.NOT_YET not in page
    # a late submission: graded at once (no budget after the deadline), full feedback, late penalty
    late_folder = s["E"].submit(A1, _solution("late"))
    page, _ = s["E"].feedback_for(A1, late_folder, timeout=180)
    assert "after the deadline" in page and "not limited" in page
    with Gradebook(nbg.config(ws).CourseDirectory.db_url) as gb:
        sub = gb.find_submission(A1, "se")
        assert sub.total_seconds_late > 0 and sub.late_submission_penalty > 0
    svc.stop()
    # the instructor's batch after the deadline grades nothing the service graded
    by_service = {r.student_id: r for r in results.load(ws).values() if not r.retry}
    hh.cli("collect", A1, "--exchange", "--workspace", str(ws))
    out = hh.cli("autograde", "--workspace", str(ws))
    # F's, which the service could not grade, is graded now; the other five are current
    assert "graded 1 submission(s)" in out and "5 already had a current result" in out, out
    record = _record(ws, "sf")
    assert record.status == "graded" and not record.retry and record.auto_score[0] == record.auto_score[1], record
    # the exported scores are the service's for the files it graded (the latest of each student)
    out = klass["tmp"] / "grades.csv"
    hh.cli("export", "--out", str(out), "--workspace", str(ws))
    with open(out, newline="") as f:
        exported = {row["student_id"]: row for row in csv.DictReader(f)}
    assert set(by_service) == set(exported) - {"sf"} and len(by_service) == 5, (sorted(by_service), sorted(exported))
    for student, r in by_service.items():
        assert results.load_one(ws, student, A1).submission_sha256 == r.submission_sha256
        assert float(exported[student]["autograded_score"]) == r.auto_score[0], (student, exported[student])
