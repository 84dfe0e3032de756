"""The course's grading tools: a thin layer over nbgrader (see __main__ for the verbs)."""
