"""The grading room: from a collected submission to its result record and gradebook scores.

    collect       submissions (folders, zips, nbgrader's exchange) -> WS/submitted/
    submission    the notebook the grader runs, rebuilt from the course's truth; tamper flags
    scan          static flags on student code
    sandbox, jail the jailed kernel (namespaces, nobody, limits)
    kernel_guard  the in-kernel guard run before every test cell (source text, run in the kernel)
    runner        execute one prepared notebook, judge each test cell
    task          one submission, one task: prepare, run, write its result
    pool, cluster the backends: local process pool, Dask distributed
    results       the result record (one file per submission)
    late          due dates and the late penalty
    autograde     a batch: what is not current, on a backend, recorded in the gradebook

It imports the shared basics and nothing from course/, reports/ or classroom/.
"""
