"""The course room: from the jupytext sources to what students and instructors receive.

    build            solutions/<id>/<id>.py -> the instructor notebook
    release          the instructor notebook -> the student notebook (nbgrader generate_assignment)
    leaks            does a file hold an answer? (scans files with contract's one leak rule)
    bundle           the student edition: notebooks, archlab, figures; refuses to write a leak
    model_solutions  executed instructor notebooks without hidden tests or rubrics
    execute          papermill the solutions, seconds cold and warm

It imports only the shared basics (autograder.paths, nbg, contract, zmqpoll).
"""
