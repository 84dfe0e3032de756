"""The reports room: what the grader's records say, to students and to instructors.

    feedback   one HTML page per submission: visible tests and messages, never hidden test source
    export     scores, status, flags per submission (CSV) and per graded cell
    canvas     the gradebook as a CSV Canvas imports
    status     counts per assignment

It reads records (autograder.grading.results) and the gradebook; it never grades.
"""
