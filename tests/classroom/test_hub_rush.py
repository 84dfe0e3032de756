"""A deadline rush on the hub: 30 submissions from 10 accounts at once, graded on submit.

JupyterHub runs the grading service (autograder/classroom/service.py) as a managed service. Ten
students each fetch 01_self_attention and press Submit three times in a row, all at once
(nbgrader's own `submit`, run as each student's Linux account: what the Assignments tab's button
runs). Part-way through the service is killed with SIGKILL; JupyterHub starts it again. Then:

- nothing is lost: every submission is either graded or superseded by a later one of the same
  student (nbgrader counts the latest), and each student's latest is graded, exactly once;
- one result per student and assignment, equal to their latest file; one gradebook row each;
- the first gradings go round-robin by student: ten students before anyone's second;
- the service that came back resumed the grading it was killed in without grading anything twice.
"""

import json
import os
import pwd
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from nbgrader.api import Gradebook

import hub_helpers as hh
import nbtools
from autograder import nbg, paths
from autograder.grading import results, task

A1 = hh.ASSIGNMENT
STUDENTS, EACH = 10, 3
pytestmark = [pytest.mark.skipif(A1 not in paths.present_assignments(), reason=f"{A1} is not among the assignments"),
              pytest.mark.hub, pytest.mark.root, pytest.mark.notebooks, pytest.mark.slow]


@pytest.fixture(scope="module")
def rush(tmp_path_factory, request):
    hh.require_hub()
    tmp = tmp_path_factory.mktemp("rush")
    k = hh.make_klass(tmp, extra_students=STUDENTS - 3)
    repo = hh.RepositoryMode()
    running = hh.RunningHub(k, tmp / "hub.log")
    started = time.monotonic()
    try:
        running.start()
        yield _run(k, running, tmp, request)
    finally:
        hh.say(request.config, f"test_hub_rush: {time.monotonic() - started:.0f} s in all")
        running.stop()
        hh.remove_klass(k)
        repo.restore()


def _notebook(n):
    answers = nbtools.solution_answers(A1)
    first = next(iter(answers))
    return nbtools.submission(nbtools.release_nb(A1), {**answers, first: answers[first] + f"\n# submission {n}"})


def _run(k, running, tmp, request):
    ws = str(k.course)
    hh.cli("publish", A1, "--workspace", ws)
    hh.cli("on-submit", A1, "--workspace", ws)     # no budget: a rush is what the deadline brings
    from autograder.classroom import studentenv
    env_path = studentenv.environment(hh.ENVS)
    labels = [x for x in k.ids if x != "I"]
    envs = {x: hh.env_of(env_path, k.prefix, k.ids[x], "student") for x in labels}
    home = {x: pwd.getpwnam(k.ids[x]).pw_dir for x in labels}
    for x in labels:
        r = hh.as_user(k.ids[x], envs[x], "nbgrader", "fetch_assignment", A1)
        assert r.returncode == 0, f"{x} could not fetch:\n{r.stdout}{r.stderr}"

    def submit_three(x):
        path = f"{home[x]}/{hh.COURSE_ID}/{A1}/{A1}.ipynb"
        pw = pwd.getpwnam(k.ids[x])
        for n in range(EACH):
            nbformat.write(_notebook(n), path)
            os.chown(path, pw.pw_uid, pw.pw_gid)
            r = hh.as_user(k.ids[x], envs[x], "nbgrader", "submit", A1)
            assert r.returncode == 0, f"{x} could not submit:\n{r.stdout}{r.stderr}"
            time.sleep(1.05)        # nbgrader's timestamps are per submission: keep them apart

    t0 = time.monotonic()
    with ThreadPoolExecutor(len(labels)) as pool:
        list(pool.map(submit_three, labels))
    hh.say(request.config, f"test_hub_rush: {STUDENTS * EACH} submissions made in {time.monotonic() - t0:.0f} s")
    inbound = k.prefix / "exchange" / hh.COURSE_ID / "inbound"
    latest = {}
    for entry in inbound.glob(f"*+{A1}+*"):
        student = entry.name.split("+")[0]
        latest[student] = max(latest.get(student, ""), entry.name)
    # kill the service with SIGKILL once it has graded a few, in the middle of grading a latest
    # submission (started less than 3 s ago: a grading takes longer); JupyterHub starts it again
    state_file = k.course / "service" / "state.json"
    deadline = time.monotonic() + 600

    def mid_grade():
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        return len(state.get("history", [])) >= 3 and any(
            name in latest.values() and time.time() - info["started"] < 3
            for name, info in state.get("running", {}).items())

    while not mid_grade():
        assert time.monotonic() < deadline, "the service graded nothing"
        time.sleep(0.2)
    [pid] = hh.grader_pids(k.course)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    at_kill = json.loads(state_file.read_text())      # nobody writes it until JupyterHub restarts it
    interrupted = {name: info["key"] for name, info in at_kill["running"].items() if name in latest.values()}
    while not [p for p in hh.grader_pids(k.course) if p != pid]:
        assert time.monotonic() - killed < 180, "JupyterHub did not start the grading service again"
        time.sleep(1)
    restarted_s = time.monotonic() - killed
    hh.say(request.config, f"test_hub_rush: JupyterHub restarted the killed service after {restarted_s:.0f} s")
    deadline = time.monotonic() + 900
    while True:
        state = json.loads(state_file.read_text())
        if all(latest[s] in state["handled"] for s in latest):
            break
        assert time.monotonic() < deadline, f"not everything was graded: {state['running']}"
        time.sleep(1)
    hh.say(request.config, f"test_hub_rush: all graded {time.monotonic() - t0:.0f} s after the rush began")
    return {"k": k, "ws": ws, "state": state, "inbound": inbound, "latest": latest, "labels": labels,
            "log": running.text(), "interrupted": interrupted}


def test_nothing_is_lost_and_each_latest_is_graded_once(rush):
    state, inbound = rush["state"], rush["inbound"]
    entries = sorted(p.name for p in inbound.glob(f"*+{A1}+*"))
    assert len(entries) == STUDENTS * EACH
    graded = [h["entry"] for h in state["history"]]
    assert len(graded) == len(set(graded)), f"a submission was recorded twice: {graded}"
    for name in entries:
        student = name.split("+")[0]
        latest = rush["latest"][student]
        assert name in graded or name < latest, f"{name} was neither graded nor superseded"
    for name in rush["latest"].values():
        assert state["handled"][name]["outcome"] == "graded", (name, state["handled"][name])


def test_one_result_and_one_gradebook_row_per_student_equal_to_the_latest(rush):
    ws, inbound = rush["ws"], rush["inbound"]
    records = results.load(ws)
    assert len(records) == STUDENTS
    cfg = nbg.config(ws)
    with Gradebook(cfg.CourseDirectory.db_url, cfg.CourseDirectory.course_id) as gb:
        rows = [s for s in gb.find_assignment(A1).submissions]
        assert len(rows) == STUDENTS
        for student, name in rush["latest"].items():
            r = records[f"{student}/{A1}"]
            assert r.submission_sha256 == task.sha256_file(inbound / name / f"{A1}.ipynb")
            assert r.auto_score[0] == r.auto_score[1] == gb.find_submission(A1, student).score


def test_the_queue_is_round_robin_by_student(rush):
    # "grading <student>/<assignment> (<entry>)", one line per start; the restarted service starts
    # again what it was killed in (the same entry), which is a resume, not a second turn
    entries = []
    for line in rush["log"].splitlines():
        m = re.fullmatch(r"grading (\S+/\S+) \((.+)\)", line.strip())
        if m and m.group(2) not in entries:
            entries.append(m.group(2))
    first = [e.split("+")[0] for e in entries[:STUDENTS]]
    assert len(first) == STUDENTS, rush["log"][-3000:]
    assert len(set(first)) == len(first), f"a student was graded twice before the others once: {first}"


def test_the_restarted_service_resumed_what_it_was_grading(rush):
    log, interrupted = rush["log"], rush["interrupted"]
    assert log.count("grading service on") >= 2, "the service did not start again"
    assert interrupted, "the service was killed with no latest submission in state.running"
    for name, key in interrupted.items():
        assert f"resuming {key} ({name})" in log, log[-3000:]
        assert rush["state"]["handled"][name]["outcome"] == "graded"
