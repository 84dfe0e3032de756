"""A student's side of nbgrader's exchange, in this process: what the Assignments tab's Submit and
Fetch Feedback buttons run (nbgrader's ExchangeSubmit, ExchangeFetchFeedback), for tests and
benchmarks of grading on submit that need no hub (the hub tests run nbgrader's commands as each
student's Linux account instead: tests/hub_helpers.py)."""

import time
from pathlib import Path

import nbformat

COURSE_ID = "architectures-workbook"


class StudentSide:
    """What the Assignments tab's Submit and Fetch Feedback buttons run (nbgrader's
    ExchangeSubmit, ExchangeFetchFeedback), as `student`, in this process: the files are this
    process's (root's), so the collector's owner check has no account to compare with; the hub
    tests run the same commands as each student's own account."""

    def __init__(self, exchange_root, student, home, course_id=COURSE_ID):
        self.root, self.student, self.home, self.course_id = Path(exchange_root), student, Path(home), course_id
        self.home.mkdir(parents=True, exist_ok=True)

    def _config(self, assignment):
        from traitlets.config import Config
        c = Config()
        c.CourseDirectory.course_id = self.course_id
        c.CourseDirectory.assignment_id = assignment
        c.CourseDirectory.student_id = self.student
        c.CourseDirectory.root = str(self.home)
        c.Exchange.root = str(self.root)
        c.Exchange.cache = str(self.home / ".cache")
        c.Exchange.assignment_dir = str(self.home)
        return c

    def _run(self, kind, assignment):
        from nbgrader.auth import Authenticator
        from nbgrader.coursedir import CourseDirectory
        from nbgrader.exchange import default
        c = self._config(assignment)
        app = getattr(default, kind)(coursedir=CourseDirectory(config=c), authenticator=Authenticator(config=c),
                                     config=c)
        app.start()
        return app

    def submit(self, assignment, nb):
        """Write the notebook where the student works, press Submit; returns the inbound folder's name."""
        path = self.home / assignment / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        return self._run("ExchangeSubmit", assignment).assignment_filename

    def fetch_feedback(self, assignment):
        """Press Fetch Feedback: {timestamp: page text} of every feedback page found for this student
        ({} while the course has released no feedback at all)."""
        from nbgrader.exchange.abc.exchange import ExchangeError
        try:
            self._run("ExchangeFetchFeedback", assignment)
        except ExchangeError:
            return {}
        found = (self.home / assignment / "feedback").glob(f"*/{assignment}.html")
        return {p.parent.name: p.read_text() for p in found}

    def feedback_for(self, assignment, folder, timeout=120):
        """The page of the submission in inbound folder `folder` (its timestamp names it), waiting up to
        `timeout` seconds; returns (page, seconds waited)."""
        stamp = folder.split("+")[2]
        t0 = time.monotonic()
        while True:
            pages = self.fetch_feedback(assignment)
            if stamp in pages:
                return pages[stamp], time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"no feedback for {self.student}'s {folder} within {timeout} s")
            time.sleep(0.5)
