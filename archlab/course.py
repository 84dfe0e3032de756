"""Where the course's files are: figures and measured results that notebooks read.

A notebook runs from `notebooks/<id>/` of the course folder (the repository, or the student
edition a student received), so the course folder is two levels up from it; when archlab is
installed in development mode it is also the folder above the package. A file that is not
there (a grading sandbox shows neither) is simply absent: notebooks print a note and go on.

    course_file("bench", "results")   -> Path of that file or folder in the course, or None
"""

import os
from pathlib import Path

MARKERS = ("notebooks", "archlab")   # a course folder holds both


def course_roots():
    """Candidate course folders, best first: $ARCHLAB_COURSE_DIR, archlab's parent, cwd's parents."""
    found = []
    env = os.environ.get("ARCHLAB_COURSE_DIR")
    if env:
        found.append(Path(env))
    found.append(Path(__file__).resolve().parent.parent)
    cwd = Path.cwd().resolve()
    found += [cwd, *cwd.parents]
    return [p for p in dict.fromkeys(found) if all((p / m).exists() for m in MARKERS)]


def course_file(*parts):
    """The path of ``parts`` inside the course folder, or None when no course folder has it."""
    for root in course_roots():
        path = root.joinpath(*parts)
        if path.exists():
            return path
    return None
