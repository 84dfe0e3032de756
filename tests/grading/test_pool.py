"""The grading service's long-lived pool (autograder.grading.pool.Workers) with a submission that
kills its worker: the suspects of the broken pool are graded again alone in a lane of their own,
while the pool goes on with other students' submissions and `finished` never waits longer than
its timeout (the service's loop notices, dispatches and writes its status on every pass). The
graded work is a stand-in for `task.run` (no notebook): how long a grading takes and whether it
kills its process is what is tested here; the real thing is tests/classroom/test_service.py."""

import os
import signal
import time

from autograder.grading import pool, sandbox, task

STEP_S = 0.2      # the service's pass


def stand_in(job):
    """`task.run` for these tests: job.path holds '<seconds> <kill|ok>'."""
    seconds, what = job.path.split()
    time.sleep(float(seconds))
    if what == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return job.failed(f"graded {job.student}")


def job(student, seconds, what="ok"):
    return task.Job(student, "a1", f"{seconds} {what}", "/nonexistent", sandbox.Limits(), False, "course")


def test_a_worker_killer_is_retried_alone_while_the_others_are_graded():
    workers = pool.Workers(2, max_tries=3, run=stand_in)
    got, slowest_pass, later = {}, 0.0, job("later", 0.3)
    try:
        workers.submit(job("killer", 1.0, "kill"))
        workers.submit(job("innocent", 3.0))
        t0 = time.monotonic()
        while len(got) < 3 and time.monotonic() - t0 < 30:
            t = time.monotonic()
            for record in workers.finished(timeout=STEP_S):
                got[record.student_id] = (record, time.monotonic() - t0)
            slowest_pass = max(slowest_pass, time.monotonic() - t)
            if workers.suspects and "later" not in {j.student for j in workers.running.values()} \
                    and "later" not in got and workers.free > 0:
                workers.submit(later)      # arrives after the pool broke
    finally:
        workers.close()
    assert set(got) == {"killer", "innocent", "later"}, got
    killer, innocent = got["killer"][0], got["innocent"][0]
    assert killer.status == "failed" and "worker died 3 times" in killer.reason, killer.reason
    assert innocent.reason == "graded innocent", innocent.reason      # graded alone, not blamed
    # graded beside the suspects' lane, before the killer used up its tries alone
    assert got["later"][1] < got["killer"][1], {k: round(v[1], 1) for k, v in got.items()}
    assert slowest_pass < STEP_S + 1.0, f"a pass waited {slowest_pass:.1f} s for the lane"
    assert workers.free == 2 and not workers.suspects
