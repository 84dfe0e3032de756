"""Where the course's files live. Everything a run writes goes under build/."""

import os
from pathlib import Path

from autograder.errors import CourseError

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build"
CONFIG = Path(__file__).resolve().parent / "nbgrader_config.py"

ASSIGNMENTS = ("01_self_attention", "02_mamba", "03_rwkv", "04_jamba_moe",
               "05_comparison", "06_open_llms", "07_practice_lab")


def present_assignments():
    """The assignment ids that have an instructor source in solutions/, in course order.

    COURSE_ASSIGNMENTS="01_self_attention 02_mamba" narrows this (and so every test that is
    parametrised over notebooks) to those ids: useful while one notebook is being written.
    """
    present = [a for a in ASSIGNMENTS if (SOLUTIONS / a / f"{a}.py").exists()]
    only = os.environ.get("COURSE_ASSIGNMENTS", "").replace(",", " ").split()
    return [a for a in present if a in only] if only else present


def check_assignment(assignment):
    if assignment not in present_assignments():
        raise CourseError(f"unknown assignment {assignment!r}; present: {', '.join(present_assignments())}")
    return assignment


def course_caches(assignment):
    """Files a notebook keeps between runs (a trained checkpoint, say): build/<id>_*. A run
    without them is cold, as a student's first run and every graded kernel are."""
    return sorted(BUILD.glob(f"{assignment}_*"))
