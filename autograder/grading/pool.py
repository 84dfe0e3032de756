"""The default backend: submissions graded N at a time by worker processes on this machine.

`grade(jobs, workers, max_tries)` yields one record per job, as each finishes (the caller
records and writes it). With one worker
everything runs in this process. At most `workers` submissions are in flight. A worker process
that dies (killed, out of memory) breaks the whole `ProcessPoolExecutor`, and which submission
it was running is unknown: each submission that was in flight then runs again alone in a fresh
process, up to `max_tries` starts in all; one that still kills its process is failed with the
reason, the others are graded, and a new pool takes the rest of the batch.
"""

from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from autograder.grading import task


def died(job, tries):
    return job.failed(f"the grading worker died {tries} times while grading it (killed, out of memory "
                      f"or a crash); not tried again", tries=tries)


def crashed(job, error):
    """The grader itself failed on this submission (a bug, a full disk): graded again next run."""
    return job.failed(f"grader error: {type(error).__name__}: {error}"[:300], retry=True)


def grade(jobs, workers=1, max_tries=3):
    todo = list(reversed(list(jobs)))
    if workers <= 1:
        while todo:
            yield task.run(todo.pop())
        return
    while todo:
        suspects = []
        with ProcessPoolExecutor(max_workers=workers) as pool:
            running = {}

            def refill():
                while todo and len(running) < workers:
                    job = todo.pop()
                    running[pool.submit(task.run, job)] = job

            refill()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
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
            yield _alone(job, max_tries)


def _alone(job, max_tries):
    tries = 1 + max(1, max_tries - 1)     # the start that broke the pool, then alone
    for _ in range(tries - 1):
        with ProcessPoolExecutor(max_workers=1) as solo:
            future = solo.submit(task.run, job)
            try:
                return future.result()
            except BrokenProcessPool:
                continue
            except Exception as error:
                return crashed(job, error)
    return died(job, tries)


def _result(future, job):
    error = future.exception()
    return future.result() if error is None else crashed(job, error)
