"""The default backend: submissions graded N at a time by worker processes on this machine.

`grade(jobs, workers, max_tries)` yields one record per job, as each finishes (the caller
records and writes it). With one worker
everything runs in this process. At most `workers` submissions are in flight. A worker process
that dies (killed, out of memory) breaks the whole `ProcessPoolExecutor`, and which submission
it was running is unknown: each submission that was in flight then runs again alone in a fresh
process, up to `max_tries` starts in all; one that still kills its process is failed with the
reason, the others are graded, and a new pool takes the rest of the batch.

Stopping (SIGINT, SIGTERM: autograder.autograde): between its waits for results `grade` calls
`check`, which raises once a signal has stopped the batch; left that way (or closed), it kills
its worker processes at once, and their kernels die with them, instead of waiting for the
submissions they grade. A worker process that gets SIGINT or SIGTERM itself (Ctrl-C reaches the
whole process group) exits at once without saving anything.
"""

import contextlib
import os
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from autograder.grading import sandbox, task

POLL_S = 0.5      # how often a wait for results looks whether a signal has stopped the batch


def died(job, tries):
    return job.failed(f"the grading worker died {tries} times while grading it (killed, out of memory "
                      f"or a crash); not tried again", tries=tries)


def crashed(job, error):
    """The grader itself failed on this submission (a bug, a full disk): graded again next run."""
    return job.failed(f"grader error: {type(error).__name__}: {error}"[:300], retry=True)


def _no_check():
    pass


def grade(jobs, workers=1, max_tries=3, check=_no_check):
    todo = list(reversed(list(jobs)))
    if workers <= 1:
        while todo:
            yield _in_this_process(todo.pop(), check)
        return
    while todo:
        suspects = []
        with _pool(workers) as pool:
            running = {}

            def refill(pool=pool, running=running):
                while todo and len(running) < workers:
                    job = todo.pop()
                    running[pool.submit(task.run, job)] = job

            refill()
            while running:
                done = _wait(running, check)
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    break
                finished = [_result(f, running.pop(f)) for f in done]
                refill()              # the next submissions start while the caller records these
                yield from finished
            for future, job in running.items():   # the pool broke: all of these were running
                if future.done() and future.exception() is None:
                    yield future.result()           # finished just before the break
                else:
                    suspects.append(job)
        # which one killed its worker is unknown: each runs again alone, in a fresh process, so
        # an innocent one is graded and the culprit alone uses up its tries
        for job in suspects:
            check()             # the pool broke because Ctrl-C killed its workers: stop
            yield _alone(job, max_tries, check)


def starts(max_tries):
    """How many starts a suspect of a broken pool gets: the one that broke it, then at least one alone."""
    return 1 + max(1, max_tries - 1)


def _alone(job, max_tries, check=_no_check):
    tries = starts(max_tries)
    for _ in range(tries - 1):
        with _pool(1) as solo:
            future = solo.submit(task.run, job)
            _wait([future], check)
            try:
                return future.result()
            except BrokenProcessPool:
                check()
                continue
            except Exception as error:
                return crashed(job, error)
    return died(job, tries)


def _wait(futures, check):
    """The futures that are done, once one is; `check` between looks (it raises to stop)."""
    while True:
        done, _ = wait(futures, timeout=POLL_S, return_when=FIRST_COMPLETED)
        if done:
            return done
        check()


@contextlib.contextmanager
def _pool(workers):
    """A process pool whose workers leave SIGINT and SIGTERM to the batch. Left by an exception
    (the batch interrupted) or closed, it kills its worker processes, kernels and all, at once:
    shutting it down would wait for the submissions they grade."""
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_signals)
    try:
        yield pool
    except BaseException:
        _kill(pool)
        raise
    pool.shutdown(wait=True)


def _worker_signals():
    """In a worker process: SIGINT and SIGTERM end it at once, before it saves anything about the
    submission it grades (its kernel dies with it). They come from the batch's own signal sent to
    the whole process group: the batch stops too, and kills what is left."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _worker_exit)


def _worker_exit(signum, frame):
    os._exit(128 + signum)


def _in_this_process(job, check):
    """One worker: the submission is graded by a thread of this process while the main thread
    waits for it and for signals. In the main thread, nbclient would take SIGINT and SIGTERM for
    itself (it shuts the kernel down, the submission is recorded as "the kernel died", and the
    batch goes on). When the batch is interrupted, the kernel is killed and the record is never
    returned, so nothing is recorded for it."""
    outcome = Future()

    def work():
        try:
            outcome.set_result(task.run(job))
        except BaseException as error:
            outcome.set_exception(error)

    thread = threading.Thread(target=work, name=f"grading {job.student} {job.assignment}", daemon=True)
    try:
        thread.start()
        _wait([outcome], check)
    except BaseException:
        sandbox.kill_kernels()
        if thread.ident is not None:
            thread.join(timeout=2)    # it sees its kernel die and lets go of the client's sockets
        sandbox.kill_kernels()        # one it was starting meanwhile
        raise
    return outcome.result()


def _result(future, job):
    error = future.exception()
    return future.result() if error is None else crashed(job, error)


class Workers:
    """A long-lived pool for the grading service (autograder.classroom.service): jobs are given
    one at a time as they arrive, and records come back as they finish. Each worker process
    dies with the service (PR_SET_PDEATHSIG), its kernel with it, so a service killed with SIGKILL
    leaves nothing grading behind. A worker that dies breaks the pool: every job that was running
    is then graded again alone, up to `max_tries` starts in all, as in `grade`, but in a lane of
    its own (a one-process pool, one suspect at a time) while the pool goes on with the others:
    one student's submission that kills its worker delays nobody else's grading."""

    def __init__(self, workers=1, max_tries=3, run=task.run):
        self.workers, self.max_tries, self.run = workers, max_tries, run     # run: tests give their own
        self._pool, self.running = None, {}      # Future -> Job
        self._solo, self.suspects = None, []      # the lane; [job, starts so far] waiting or in it
        self._solo_future = None

    @property
    def free(self):
        return self.workers - len(self.running) - (1 if self.suspects else 0)   # the lane takes one

    def submit(self, job):
        if self._pool is None:
            self._pool = _service_pool(self.workers)
        self.running[self._pool.submit(self.run, job)] = job

    def finished(self, timeout):
        """The records of the jobs that finish within `timeout` seconds ([] if none does). Never
        waits longer than that, also while a suspect is graded alone."""
        futures = list(self.running) + ([self._solo_future] if self._solo_future else [])
        if not futures:
            return []
        done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        out = self._solo_finished() if self._solo_future in done else []
        done = [f for f in done if f in self.running]
        if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
            for future, job in self.running.items():
                if future.done() and future.exception() is None:
                    out.append(future.result())
                else:
                    self.suspects.append([job, 1])      # the start that broke the pool
            _kill(self._pool)
            self._pool, self.running = None, {}
        else:
            out += [_result(f, self.running.pop(f)) for f in done]
        self._next_suspect()
        return out

    def _next_suspect(self):
        if self._solo_future is not None or not self.suspects:
            return
        if self._solo is None:
            self._solo = _service_pool(1)
        self._solo_future = self._solo.submit(self.run, self.suspects[0][0])

    def _solo_finished(self):
        future, self._solo_future = self._solo_future, None
        job, started = self.suspects[0]
        try:
            record = future.result()
        except BrokenProcessPool:
            _kill(self._solo)
            self._solo = None
            self.suspects[0][1] = started = started + 1
            if started < starts(self.max_tries):
                return []                               # alone again, next
            record = died(job, started)
        except Exception as error:
            record = crashed(job, error)
        self.suspects.pop(0)
        return [record]

    def close(self):
        """Kill the worker processes (their kernels follow) and forget what they ran."""
        _kill(self._pool)
        _kill(self._solo)
        self._pool, self.running = None, {}
        self._solo, self._solo_future, self.suspects = None, None, []


def _service_pool(workers):
    return ProcessPoolExecutor(max_workers=workers, initializer=_service_worker)


def _kill(executor):
    """Kill a pool's worker processes at once with SIGKILL (their kernels follow: setpriv
    --pdeathsig, autograder.sandbox) and let it go."""
    if executor is None:
        return
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError):
            process.kill()
    executor.shutdown(wait=False, cancel_futures=True)


def _service_worker():
    from autograder.grading import jail
    _worker_signals()
    jail.die_with_parent()
