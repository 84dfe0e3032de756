"""Grading on Dask distributed (autograder.grading.cluster), with real LocalClusters of two worker
processes: the same results as the local pool; a worker killed in the middle of a batch loses
nothing and records nothing twice; a submission that kills its workers is failed after a
bounded number of tries without stalling the batch; a run interrupted with Ctrl-C, run again,
grades only what has no result yet.
"""

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import dask
import nbformat
import pytest
import sqlalchemy

import nbtools
from autograder import grade, nbg, paths
from autograder.grading import autograde, collect, results
from autograder.reports import export
from hostile import probe

IDS = paths.present_assignments()
NB = "01_self_attention"
pytestmark = [pytest.mark.skipif(NB not in IDS, reason="needs notebook 01"),
              pytest.mark.notebooks, pytest.mark.slow]
# two fast notebooks of the shared batch: correct, untouched, two wrong, not a notebook, each
SUBSET = [a for a in ("01_self_attention", "06_open_llms") if a in IDS]
STUDENTS = ("alice", "bob", "wrong1", "wrong2", "broken")


def test_dask_gives_exactly_the_local_pools_results(autograde_batch, tmp_path):
    pool_rows, _, subs, pool_ws = autograde_batch
    for student in STUDENTS:
        for a in SUBSET:
            shutil.copytree(subs / student / a, tmp_path / "subs" / student / a)
    rows = grade.grade(tmp_path / "subs", tmp_path / "grades.csv", workspace=tmp_path / "ws",
                       settings=autograde.Settings(cluster="local:2"))
    assert sorted((r.student_id, r.assignment) for r in rows) == sorted((s, a) for s in STUDENTS for a in SUBSET)
    pool_records, dask_records = results.load(pool_ws), results.load(tmp_path / "ws")
    same = ("status", "reason", "flags", "tests", "isolated", "threads", "submission_sha256", "course_sha256")
    for r in rows:
        p = pool_rows[r.student_id, r.assignment]
        assert vars(r) == vars(p), (r.student_id, r.assignment)
        key = f"{r.student_id}/{r.assignment}"
        assert {k: getattr(dask_records[key], k) for k in same} == {k: getattr(pool_records[key], k) for k in same}, key


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster started here (the grader reaches it with --scheduler), two worker
    processes of one thread, a task given up after its second dead worker."""
    from distributed import Client, LocalCluster
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=0,
                          dashboard_address=None, silence_logs=logging.ERROR,
                          scheduler_kwargs={"allowed_failures": 1}) as lc, Client(lc) as client:
            yield lc.scheduler_address, client


def _submissions(folder, students):
    rel = nbtools.release_nb(NB)
    answers = {"alice": nbtools.solution_answers(NB), "bob": {},
               "carol": {g: w.code for g, w in nbtools.first_wrong(NB, "visible").items()}}
    for student in students:
        path = folder / student / NB / f"{NB}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nbtools.submission(rel, answers[student.rstrip("0123456789")]), path)


def _gradebook_rows(ws):
    """(submissions per (student, assignment), grades per (student, cell)) counted in the gradebook."""
    engine = sqlalchemy.create_engine(nbg.config(ws).CourseDirectory.db_url)
    with engine.connect() as c:
        subs = c.execute(sqlalchemy.text(
            "SELECT student_id, count(*) FROM submitted_assignment GROUP BY student_id, assignment_id")).all()
        grades = c.execute(sqlalchemy.text(
            "SELECT s.student_id, g.cell_id, count(*) FROM grade g JOIN submitted_notebook n ON g.notebook_id = n.id "
            "JOIN submitted_assignment s ON n.assignment_id = s.id GROUP BY s.student_id, g.cell_id")).all()
    engine.dispose()
    return subs, grades


def _wait_idle(client, timeout=300):
    """Until no worker runs a task. Not the scheduler's `processing()`: it forgets the tasks of a
    client that went away (the interrupted command's), while their workers still run them and
    write their results."""
    deadline = time.monotonic() + timeout
    while any(client.run(lambda dask_worker: dask_worker.state.executing_count).values()):
        assert time.monotonic() < deadline, "the cluster never went idle"
        time.sleep(0.5)


def test_interrupted_then_resumed_with_a_worker_killed_mid_task(cluster, tmp_path):
    address, client = cluster
    students = ["alice", "bob", "carol", "alice2", "bob2", "carol2"]
    _submissions(tmp_path / "subs", students)
    ws = tmp_path / "ws"
    collect.collect(tmp_path / "subs", ws)
    autograde.prepare_assignments(ws, [NB])

    # 1. Ctrl-C once the first submission has its result
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cli = subprocess.Popen([sys.executable, "-m", "autograder", "autograde", "--workspace", str(ws),
                            "--scheduler", address], cwd=paths.ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    while not list((ws / "results").glob("*/*.json")):
        assert cli.poll() is None and time.monotonic() < deadline, cli.communicate()[0][-3000:]
        time.sleep(0.2)
    cli.send_signal(signal.SIGINT)
    try:
        out = cli.communicate(timeout=300)[0]
    except subprocess.TimeoutExpired:
        cli.kill()
        pytest.fail(f"the interrupted command did not stop: {cli.communicate()[0][-3000:]}")
    assert cli.returncode == 130 and "interrupted:" in out, out[-2000:]
    _wait_idle(client)           # tasks that were running finish on their workers, results and all
    before = set(results.load(ws))
    assert 0 < len(before) < len(students), before

    # 2. run again; kill the worker of a running task while it runs
    killed = {}

    def kill_a_busy_worker():
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed:
            busy = {w: keys for w, keys in client.processing().items() if keys}
            if busy:
                worker, keys = sorted(busy.items())[0]
                time.sleep(1.0)             # well inside the task: kernel started, cells running
                pids = client.run(os.getpid)
                if worker in pids and client.processing().get(worker) == keys:
                    os.kill(pids[worker], signal.SIGKILL)
                    killed[worker] = keys
            time.sleep(0.2)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    records = autograde.autograde(ws, settings=autograde.Settings(scheduler=address))
    killer.join()
    assert killed, "no worker was killed: the test proved nothing"
    (task_key,) = next(iter(killed.values()))
    graded_now = {results.key(r) for r in records}
    assert graded_now.isdisjoint(before), "the resumed run graded again what already had a result"
    assert graded_now | before == {f"{s}/{NB}" for s in students}
    assert any(task_key.startswith(f"grade-{k.split('/')[0]}-") for k in graded_now)   # the killed one, rerun

    # 3. every submission graded once, exactly one gradebook row each, the right scores
    final = results.load(ws)
    assert all(r.status == "graded" for r in final.values()), final
    subs, grades = _gradebook_rows(ws)
    assert sorted(s for s, n in subs) == sorted(students) and all(n == 1 for _, n in subs)
    assert grades and all(n == 1 for *_, n in grades)
    rows = {r["student_id"]: r for r in export.rows(ws)}
    full = rows["alice"]["autograded_max"]
    assert full > 0 and rows["alice"]["autograded_score"] == rows["alice2"]["autograded_score"] == full
    assert all(rows[s]["autograded_score"] == 0 for s in ("bob", "carol", "bob2", "carol2"))
    # no kernel outlived the worker that was killed (setpriv --pdeathsig in the sandbox)
    leftovers = subprocess.run(["pgrep", "-f", str(ws)], capture_output=True, text=True).stdout.split()
    assert not leftovers, leftovers

    # 4. a third run finds nothing to do
    assert autograde.autograde(ws, settings=autograde.Settings(scheduler=address)) == []


def test_a_submission_that_kills_its_workers_is_failed_and_the_batch_goes_on(cluster, tmp_path):
    """Without the jail a kernel can kill the worker that grades it; the scheduler gives that
    task up after its second dead worker (allowed_failures=1) and the batch finishes."""
    address, _ = cluster
    _submissions(tmp_path / "subs", ["alice"])
    path = tmp_path / "subs" / "killer" / NB / f"{NB}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(probe.worker_killer(os.getpid()), path)
    rows = {r.student_id: r for r in grade.grade(tmp_path / "subs", tmp_path / "grades.csv", workspace=tmp_path / "ws",
                                                 isolate=False, settings=autograde.Settings(scheduler=address))}
    assert rows["killer"].status == "failed" and "worker died 2 times" in rows["killer"].reason, rows["killer"]
    assert rows["alice"].autograded_score == rows["alice"].autograded_max > 0
    # a failed result is a result: the next run leaves it alone
    assert autograde.autograde(tmp_path / "ws", isolate=False, settings=autograde.Settings(scheduler=address)) == []


def test_the_grading_service_grades_on_a_dask_scheduler(cluster, tmp_path):
    """The hub's grading service (autograder.classroom.service) with --scheduler: a submission made
    with nbgrader's submit is graded on the cluster and its page released for Fetch Feedback."""
    import exchange_helpers as xh
    from autograder.classroom import exchange, on_submit, service
    address, _ = cluster
    ws = tmp_path / "ws"
    exchange.release(ws, NB)
    on_submit.set_rule(ws, NB)
    cfg = nbg.config(ws)
    student = xh.StudentSide(cfg.Exchange.root, "dana", tmp_path / "dana", cfg.CourseDirectory.course_id)
    folder = student.submit(NB, nbtools.submission(nbtools.release_nb(NB), nbtools.solution_answers(NB)))
    svc = service.Service(service.ServiceSettings(workspace=str(ws), scheduler=address, poll_s=0.5, passes=600))
    svc.run(until=lambda: folder in svc.state.handled)
    assert folder in svc.state.handled, f"not graded on the cluster: {svc.state.running}"
    record = results.load_one(ws, "dana", NB)
    assert record.status == "graded" and record.auto_score[0] == record.auto_score[1] > 0
    page = student.fetch_feedback(NB)[folder.split("+")[2]]
    assert "Automatic score so far" in page and "not passed" not in page
