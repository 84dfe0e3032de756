"""nbgrader's exchange, from the instructor's side: release, collect, release feedback.

The exchange is the folder students reach through the Assignments tab (nbgrader's
`fetch_assignment`, `submit`, `fetch_feedback`), laid out and permissioned the way nbgrader
documents it:

    <root>/                      1777  anyone may create a course folder; nobody may remove another's
    <root>/<course>/outbound/    0755  released assignments, readable by all
    <root>/<course>/inbound/     3733  students may create their submission folder but not list the
                                       others (names end in a random string); sticky: nobody may
                                       rename or remove another's
    <root>/<course>/feedback/    0711  feedback files named by a hash of the submission's secret

`release ID --exchange` regenerates the assignment in the workspace (nbgrader
generate_assignment, which records it in the gradebook), sets its due date and runs nbgrader's
release_assignment. `collect ID --exchange` takes each student's latest submission, with its own
timestamp and secret (needed for feedback and deadlines), and refuses a submission whose
folder is not owned by the account it claims to come from (nbgrader's collect only warns).
`feedback --release` writes the course's feedback (autograder.reports.feedback: no hidden tests) and
runs nbgrader's release_feedback, so students fetch it in the Assignments tab.
"""

import datetime
import os
import shutil
import stat
from pathlib import Path

from nbgrader.api import Gradebook
from traitlets.config import Config

from autograder import nbg, paths
from autograder.errors import CourseError
from autograder.grading import collect as collect_mod
from autograder.grading import results
from autograder.reports import feedback as feedback_mod


def course_exchange(ws):
    """(exchange root, course id) from the workspace's configuration."""
    cfg = nbg.config(ws)
    return Path(cfg.Exchange.root), cfg.CourseDirectory.course_id


def parse_due(text):
    """A due date from the command line: ISO 8601; without a zone it is UTC."""
    try:
        due = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise CourseError(f"due date {text!r}: use ISO 8601, e.g. 2026-03-01T17:00:00+01:00") from None
    if due.tzinfo is not None:
        due = due.astimezone(datetime.UTC)
    return due.replace(tzinfo=None)     # nbgrader stores naive UTC


def release(ws, assignment, due=None):
    """Generate `assignment` in the workspace and release it to the exchange."""
    paths.check_assignment(assignment)
    api = nbg.api(ws)
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise CourseError(f"nbgrader could not generate {assignment}:\n{result.get('log', '')}")
    if due is not None:
        with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
            gb.update_or_create_assignment(assignment, duedate=due)
    root, course = course_exchange(ws)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o1777)
    api.update_config(Config({"ExchangeReleaseAssignment": {"force": True}}))   # re-release replaces
    result = api.release_assignment(assignment)
    if not result["success"]:
        raise CourseError(f"nbgrader could not release {assignment}:\n{result.get('log', '')}\n"
                          f"{result.get('error', '')}")
    inbound = root / course / "inbound"
    os.chmod(inbound, os.stat(inbound).st_mode | stat.S_ISVTX)
    return root / course / "outbound" / assignment


def collect(ws, assignment):
    """Every student's latest submission of `assignment`, straight from the exchange."""
    root, course = course_exchange(ws)
    if not (root / course / "inbound").is_dir():
        raise CourseError(f"no exchange for course {course!r} under {root}: release an assignment first "
                         f"(python -m autograder release ID --exchange)")
    return collect_mod.collect(root / course, ws, assignment=assignment)


def release_feedback(ws, assignment=None):
    """Write feedback for every graded submission and release it through the exchange."""
    written = feedback_mod.generate(ws)
    api = nbg.api(ws)
    released = []
    for record in results.load(ws).values():
        a, s = record.assignment, record.student_id
        if assignment and a != assignment:
            continue
        sub = Path(ws) / "submitted" / s / a
        if not (sub / "submission_secret.txt").exists():
            continue      # not from the exchange (a folder or a zip): nothing to release to
        fb = Path(ws) / "feedback" / s / a
        for name in ("timestamp.txt", "submission_secret.txt"):
            shutil.copy(sub / name, fb / name)
        result = api.release_feedback(a, s)
        if not result["success"]:
            raise CourseError(f"nbgrader could not release feedback of {s}/{a}:\n{result.get('log', '')}")
        released.append((s, a))
    return written, released
