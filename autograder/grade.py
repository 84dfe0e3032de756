"""One command for a batch: collect -> autograde -> feedback -> export, in one workspace.

Each step is also a verb of its own (collect, autograde, feedback, export); this runs them in
order. A submission that cannot be graded is never a silent zero: its row says `failed` and
why, and the other submissions of the batch are still graded.
"""

from pathlib import Path
from types import SimpleNamespace

from autograder import paths
from autograder.errors import CourseError
from autograder.grading import autograde, collect, results
from autograder.reports import export, feedback


def prepare_workspace(ws, assignments=None):
    """Record the assignments (default: every present one) in the workspace's gradebook."""
    return autograde.prepare_assignments(ws, assignments or paths.present_assignments())


def grade(submissions, out_csv, workspace=None, settings=None, *, limits=None, isolate=None):
    """collect + autograde + feedback + export; returns the export's rows (as namespaces: row.status).

    `settings` is an autograde.Settings (default: one local worker)."""
    ws = Path(workspace or paths.BUILD / "grading").resolve()
    with autograde.stopped_by_signals():   # SIGINT, SIGTERM: as in autograde, in every step
        try:
            count, problems = collect.collect(submissions, ws)
            if not count and not problems:
                raise CourseError(f"no submissions found under {submissions}")
            autograde.autograde(ws, settings or autograde.Settings(), limits=limits, isolate=isolate)
            for student, assignment, why in problems:
                results.save(ws, results.failed(student, assignment, why))
            feedback.generate(ws)
            rows = export.rows(ws)
            export.write(rows, out_csv)
        except autograde.Interrupted as e:   # while collecting, writing feedback or the CSV
            if e.detail:
                raise                        # autograde said where it stopped
            raise autograde.Interrupted(e.signum, "the results written so far are kept; the same command "
                                                  "goes on from there") from None
    return [SimpleNamespace(**r) for r in rows]
