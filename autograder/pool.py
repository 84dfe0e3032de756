"""The default backend: submissions graded N at a time by worker processes on this machine.

`grade(jobs, workers, max_tries)` yields one record per job, as each finishes. With one worker
everything runs in this process. A worker process that dies (killed, out of memory) breaks
the whole `ProcessPoolExecutor`; then the pool is rebuilt and the submissions that were running
are started again, each at most `max_tries` times in all, after which its record says failed.
At most `workers` submissions are in flight, so every one of them was running when it broke.
"""

from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from . import results, task


def died(job, tries):
    return results.failed(job.student, job.assignment,
                          f"the grading worker died {tries} times while grading it (killed, out of memory "
                          f"or a crash); not tried again", tries=tries, isolated=job.isolate)


def grade(jobs, workers=1, max_tries=3):
    jobs = list(jobs)
    if workers <= 1:
        for job in jobs:
            yield task.run(job)
        return
    todo, tries = list(reversed(jobs)), {}
    while todo:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            running = {}
            broken = False
            while (todo or running) and not broken:
                while todo and len(running) < workers:
                    job = todo.pop()
                    tries[id(job)] = tries.get(id(job), 0) + 1
                    running[pool.submit(task.run, job)] = job
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    job = running.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        running[future] = job   # handled with the others below
            for future, job in running.items():  # the pool broke: these were all running
                if future.done() and not future.cancelled() and future.exception() is None:
                    yield future.result()         # finished just before the break
                elif tries[id(job)] >= max_tries:
                    record = died(job, tries[id(job)])
                    results.save(job.workspace, record)
                    yield record
                else:
                    todo.append(job)
