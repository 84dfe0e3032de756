"""Errors an instructor can cause and fix: a misspelt nbgrader marker, a missing folder, a bad
roster, an unknown assignment, a bad option. Library code raises them with a message that says
what to do; the command line (autograder.cli) prints that message as one line and exits 1,
never a traceback."""


class CourseError(Exception):
    """Something in the instructor's input or set-up is wrong; the message says what."""


class MarkerError(CourseError, ValueError):
    """An nbgrader marker is misspelt, unpaired or out of place in a notebook's source."""
