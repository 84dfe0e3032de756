"""The Dask backend: every submission is one task on a Dask distributed cluster.

    --scheduler tcp://HOST:8786   a running cluster (Slurm through dask-jobqueue, Kubernetes
                                  through dask-kubernetes or the Dask Helm chart: autograder/README.md)
    --cluster local:N             a distributed.LocalCluster of N worker processes on this machine

A task is `autograder.grading.task.run`: prepare, execute in the jail (which each worker builds, as
the local pool's workers do), write the submission's result file. Workers run one task at a
time (one thread each) and never touch the gradebook or the result files; `grade` yields the
records here, where autograder.grading.autograde records and writes them one at a time.

Dask reruns the task of a worker that died (killed, out of memory) on another worker. A task
that was running on `allowed_failures + 1` dead workers is given up with `KilledWorker`: that
submission's record says failed, and the rest of the batch goes on. On a LocalCluster started
here, allowed_failures is `max_tries - 1`; a running scheduler keeps its own setting
(`distributed.scheduler.allowed-failures`, default 3, so 4 tries), which the first line of the run states.

Stopping (SIGINT, SIGTERM: autograder.autograde): `grade` waits for results in short slices and
calls `check` between them, which raises once a signal has stopped the batch. A LocalCluster
started here then has its worker processes killed before it is closed, their kernels with them;
on a running scheduler, the tasks already started finish on their workers (Dask cannot stop a
running task); their records reach no one (only the batch writes records), so the next run
grades them again.
"""

import contextlib
import logging
import os
import queue
import signal
import uuid
from collections import Counter
from dataclasses import replace
from urllib.parse import urlparse

from autograder.errors import CourseError
from autograder.grading import task


def parse_local(spec):
    """"local:N" -> N worker processes."""
    kind, _, n = spec.partition(":")
    if kind != "local" or not n.isdigit() or int(n) < 1:
        raise CourseError(f"--cluster {spec!r}: expected local:N with N >= 1 worker processes (e.g. local:4)")
    return int(n)


@contextlib.contextmanager
def connect(scheduler=None, cluster=None, max_tries=3):
    """A distributed.Client for the batch: to a running scheduler, or to a LocalCluster started here."""
    from distributed import Client, LocalCluster
    if cluster:
        n = parse_local(cluster)
        # one thread per worker: one kernel at a time each; no memory limit on the worker process
        # itself (the kernel, a child process, has the jail's limits); no dashboard server
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, memory_limit=0,
                          dashboard_address=None, silence_logs=logging.ERROR,
                          scheduler_kwargs={"allowed_failures": max_tries - 1}) as lc, Client(lc) as client:
            try:
                yield client
            except BaseException:
                _kill_workers(lc)
                raise
    else:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as e:
            raise CourseError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
        with client:
            yield client


def _kill_workers(lc):
    """SIGKILL the LocalCluster's worker processes: their kernels die with them (setpriv
    --pdeathsig, autograder.sandbox), and closing the cluster does not wait for their tasks."""
    for nanny in list(lc.workers.values()):
        pid = getattr(getattr(getattr(nanny, "process", None), "process", None), "pid", None)
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def kernels_per_host(client):
    """{host: worker threads on it}: how many kernels run at once on each machine."""
    per_host = Counter()
    for w in client.scheduler_info(n_workers=-1)["workers"].values():
        per_host[w["host"]] += w["nthreads"]
    return dict(per_host)


def tries_allowed(client):
    return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures) + 1


def _run_on_worker(job, per_host):
    """The task as a worker runs it: its kernels' thread share from its own machine's count."""
    from distributed import get_worker
    worker = get_worker()
    host = urlparse(worker.address).hostname
    return task.run(replace(job, kernels_at_once=per_host.get(host) or worker.state.nthreads))


POLL_S = 0.5      # how often a wait for results looks whether a signal has stopped the batch


def _no_check():
    pass


def grade(client, jobs, check=_no_check):
    """Run every job; yield one record per job as each finishes (or is given up).

    At most one task per worker thread is in flight, so a task waits on the scheduler, not in
    a worker's queue: when a worker dies, only the task it was running counts that death."""
    try:
        client.wait_for_workers(1, timeout=120)
    except TimeoutError:
        raise CourseError(f"the Dask scheduler at {client.scheduler.address} has no workers (waited 120 s)") from None
    batch = uuid.uuid4().hex[:8]
    todo, futures, finished = list(reversed(jobs)), {}, queue.SimpleQueue()

    def submit_more():
        per_host = kernels_per_host(client)
        while todo and len(futures) < max(1, sum(per_host.values())):
            job = todo.pop()
            future = client.submit(_run_on_worker, job, per_host, pure=False,
                                   key=f"grade-{job.student}-{job.assignment}-{batch}")
            futures[future] = job
            future.add_done_callback(finished.put)   # called in a thread of Dask's

    submit_more()
    while futures:
        try:
            future = finished.get(timeout=POLL_S)
        except queue.Empty:
            check()
            continue
        job = futures.pop(future)
        record = _outcome(future, job)
        future.release()
        submit_more()          # the next task starts while this process records this one
        yield record


def _outcome(future, job):
    from distributed.scheduler import KilledWorker
    try:
        return future.result()
    except KilledWorker as e:
        record = job.failed(f"the grading worker died {e.allowed_failures + 1} times while grading it "
                            f"(killed, out of memory or a crash); not tried again", tries=e.allowed_failures + 1)
    except Exception as e:   # the cluster failed, not the submission: graded again next run
        record = job.failed(f"grader error on the cluster: {type(e).__name__}: {e}"[:300], retry=True)
    return record


class Stream:
    """The grading service's Dask backend (autograder.classroom.service): jobs are given one at a
    time as they arrive and records come back as they finish, the interface of
    autograder.grading.pool.Workers. At most one task per worker thread is in flight."""

    def __init__(self, client):
        self.client, self.running, self._done = client, {}, queue.SimpleQueue()
        self.batch = uuid.uuid4().hex[:8]

    @property
    def free(self):
        return max(1, sum(kernels_per_host(self.client).values())) - len(self.running)

    def submit(self, job):
        per_host = kernels_per_host(self.client)
        future = self.client.submit(_run_on_worker, job, per_host, pure=False,
                                    key=f"grade-{job.student}-{job.assignment}-{self.batch}-{uuid.uuid4().hex[:6]}")
        self.running[future] = job
        future.add_done_callback(self._done.put)     # called in a thread of Dask's

    def finished(self, timeout):
        """The records of the jobs that finish within `timeout` seconds ([] if none does)."""
        out = []
        try:
            future = self._done.get(timeout=timeout)
        except queue.Empty:
            return out
        while True:
            job = self.running.pop(future, None)
            if job is not None:
                out.append(_outcome(future, job))
                future.release()
            try:
                future = self._done.get_nowait()
            except queue.Empty:
                return out

    def close(self):
        """Cancel what has not started; tasks already running finish on their workers, unrecorded
        (the service grades them again when it starts)."""
        for future in list(self.running):
            with contextlib.suppress(Exception):
                future.cancel()
        self.running = {}
