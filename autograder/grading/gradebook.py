"""The gradebook as the grader uses it: one session to record one graded submission.

nbgrader owns the gradebook (SQLite or PostgreSQL, whatever the workspace's configuration
names) and decides a cell's score; its preprocessors SaveAutoGrades and AssignLatePenalties
each open a gradebook of their own. Here both run inside the one session `record` opens, with
the submission's time and the decision "does it wait for manual grading?", so recording a
submission is one connection and one place.

`needs_manual(submission)` is that decision, for every caller (the batch summary, the export).
"""

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
from nbgrader.preprocessors.base import NbGraderPreprocessor

from autograder import nbg
from autograder.grading import late


def needs_manual(submission):
    """Does this gradebook submission have a grade an instructor must still give or review?"""
    return any(g.needs_manual_grade for nb in submission.notebooks for g in nb.grades)


def find(gb, assignment, student):
    """The gradebook submission, or None."""
    try:
        return gb.find_submission(assignment, student)
    except MissingEntry:
        return None


class _SaveAutoGrades(SaveAutoGrades):
    """nbgrader's SaveAutoGrades, in a session it is given (it would open its own)."""

    def __init__(self, gb, **kw):
        super().__init__(**kw)
        self._session = gb

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        self.notebook_id, self.assignment_id = info["notebook"], info["assignment"]
        self.student_id, self.db_url = info["student"], info["db_url"]
        self.gradebook = self._session
        return NbGraderPreprocessor.preprocess(self, nb, resources)


class _AssignLatePenalties(AssignLatePenalties):
    """nbgrader's AssignLatePenalties (the same rule, lines for lines), in a given session."""

    def __init__(self, gb, **kw):
        super().__init__(**kw)
        self._session = gb

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        self.notebook_id, self.assignment_id, self.student_id = info["notebook"], info["assignment"], info["student"]
        self.init_plugin()
        gb = self.gradebook = self._session
        submission = gb.find_submission(self.assignment_id, self.student_id)
        notebook = gb.find_submission_notebook(self.notebook_id, self.assignment_id, self.student_id)
        notebook.late_submission_penalty = None
        if submission.total_seconds_late > 0:
            penalty = self.plugin_inst.late_submission_penalty(self.student_id, notebook.score,
                                                               submission.total_seconds_late)
            if penalty is not None:
                notebook.late_submission_penalty = self._check_late_penalty(notebook, penalty)
        gb.db.commit()
        return nb, resources


def record(ws, record, cfg=None):
    """Put one graded submission's scores, its time and its late penalty into the gradebook, in
    one session, and set `record.needs_manual`. Only the process that started the batch calls
    this; it never touches manual scores, so recording again is idempotent."""
    if record.status != "graded":
        return record
    cfg = cfg or nbg.config(ws)
    db_url = cfg.CourseDirectory.db_url
    student, assignment = record.student_id, record.assignment
    with open(record.executed) as f:   # the grader wrote it: no need to validate it again (slow)
        nb = nbformat.v4.reads(f.read())
    resources = {"nbgrader": {"notebook": assignment, "assignment": assignment, "student": student,
                              "db_url": db_url}}
    with Gradebook(db_url) as gb:
        gb.update_or_create_student(student)
        if find(gb, assignment, student) is None:
            gb.add_submission(assignment, student)
        _SaveAutoGrades(gb).preprocess(nb, resources)
        gb.update_or_create_submission(assignment, student, timestamp=late.submitted_at(ws, student, assignment))
        _AssignLatePenalties(gb, plugin_class=late.LatePolicy, config=cfg).preprocess(
            nbformat.v4.new_notebook(), resources)
        record.needs_manual = needs_manual(gb.find_submission(assignment, student))
    return record
