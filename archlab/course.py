"""The course around a notebook: its setup cell in one call, and where the course's files are.

Every notebook's locked setup cell is its imports and one line,

    device, QUICK, GRADING = setup(DEVICE, QUICK, SEED)

with DEVICE, QUICK and SEED from its ``parameters`` cell (:func:`setup`).

A notebook runs from `notebooks/<id>/` of the course folder (the repository, or the student
edition a student received), so the course folder is two levels up from it; when archlab is
installed in development mode it is also the folder above the package. A file that is not
there (a grading sandbox shows neither) is simply absent: notebooks print a note and go on.

    course_file("bench", "results")   -> Path of that file or folder in the course, or None

Glossary
--------
grading
    nbgrader is running the notebook: it sets the environment variable ``NBGRADER_EXECUTION``
    (``autograde`` or ``validate``). The grader always runs the small version (QUICK), and
    cells that no graded test reads (timing sweeps, plots, widgets) are skipped or shrunk.
"""

import os
from pathlib import Path

MARKERS = ("notebooks", "archlab")   # a course folder holds both


def grading():
    """Whether nbgrader is running this notebook (it sets ``NBGRADER_EXECUTION``)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def setup(device="auto", quick=True, seed=0):
    """A notebook's setup, from its parameters: returns ``(device, QUICK, GRADING)``.

    * ``GRADING``: :func:`grading`, whether nbgrader is running the notebook;
    * ``QUICK``: ``quick`` as given, but always True while grading (the grader runs the small
      version);
    * ``device``: :func:`archlab.device.pick_device` of ``device`` ("auto", "cpu", "cuda",
      "cuda:N"), which prints one line saying which device it chose and why;

    then prints which implementation each fast path uses on that device
    (:func:`archlab.fastpaths.show`, kept in the output) and seeds torch's random generator
    with ``seed`` (``torch.manual_seed``). Python's ``random`` and NumPy are not seeded here:
    the cells that use them make their own seeded generators.
    """
    import torch

    from archlab import fastpaths
    from archlab.device import pick_device

    is_grading = grading()
    if is_grading:
        quick = True
    chosen = pick_device(device)
    fastpaths.show(chosen)
    torch.manual_seed(seed)
    return chosen, quick, is_grading


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
