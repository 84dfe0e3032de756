"""The class list: one CSV row per person, `id,name,role,lms_id`.

    id      the login: a Linux account name (lowercase letters, digits, '_' or '-', at most 32)
    name    shown in the gradebook and the LMS export
    role    student | instructor
    lms_id  the student's id in the LMS (Canvas "SIS User ID"); may be empty for instructors

Example:

    id,name,role,lms_id
    ada,Ada Lovelace,student,S1001
    alan,Alan Turing,student,S1002
    grace,Grace Hopper,instructor,
"""

import csv
import pwd
import re
from dataclasses import dataclass
from pathlib import Path

from autograder.errors import CourseError

COLUMNS = ("id", "name", "role", "lms_id")
ROLES = ("student", "instructor")
# useradd's rule (NAME_REGEX), without '$'; '+' is excluded because nbgrader's exchange separates
# student, assignment and time with it
LOGIN = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    role: str
    lms_id: str = ""

    @property
    def first_last(self):
        """(first name, last name) as nbgrader's gradebook stores them."""
        first, _, last = self.name.strip().partition(" ")
        return first, last


def read(path):
    """The members of a roster CSV, in file order; CourseError with every problem found."""
    path = Path(path)
    if not path.exists():
        raise CourseError(f"roster {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
        header = [h.strip() for h in (rows[0].keys() if rows else [])]
    if not rows:
        raise CourseError(f"roster {path} has no rows (expected the header {','.join(COLUMNS)} and one row per person)")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise CourseError(f"roster {path}: missing column(s) {', '.join(missing)}; "
                          f"the header must be {','.join(COLUMNS)}")
    members, problems, seen = [], [], set()
    for n, row in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        m = Member(row["id"], row["name"], row["role"].lower(), row["lms_id"])
        if not LOGIN.match(m.id):
            problems.append(f"line {n}: id {m.id!r} is not a login name (lowercase letters, digits, '_' or '-', "
                            "starting with a letter or '_', at most 32 characters)")
        if m.role not in ROLES:
            problems.append(f"line {n}: role {row['role']!r} must be one of {', '.join(ROLES)}")
        if m.role == "student" and not m.lms_id:
            problems.append(f"line {n}: student {m.id!r} has no lms_id (needed for the LMS export)")
        if m.id in seen:
            problems.append(f"line {n}: id {m.id!r} appears twice")
        seen.add(m.id)
        try:
            if pwd.getpwnam(m.id).pw_uid < 1000:
                problems.append(f"line {n}: id {m.id!r} is a system account; choose another login")
        except KeyError:
            pass
        members.append(m)
    if problems:
        raise CourseError(f"roster {path}:\n  " + "\n  ".join(problems))
    if not any(m.role == "instructor" for m in members):
        raise CourseError(f"roster {path}: no instructor (role 'instructor'); the formgrader needs one")
    return members


def write(members, path):
    with Path(path).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for m in members:
            w.writerow([m.id, m.name, m.role, m.lms_id])
    return Path(path)
