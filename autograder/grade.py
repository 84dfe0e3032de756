"""One command for a batch: collect a folder of submissions, autograde them (a local pool or a
Dask cluster: autograder.autograde), write feedback and export the CSV. Each step is also a verb of its own (collect, autograde,
feedback, export); this runs them in order in one workspace.

A submission that cannot be graded is never a silent zero: its row says `failed` and why, and
the other submissions of the batch are still graded.
"""

from pathlib import Path
from types import SimpleNamespace

from . import autograde, collect, export, feedback, paths, results


def prepare_workspace(ws, assignments=None):
    """Record the assignments (default: every present one) in the workspace's gradebook."""
    return autograde.prepare_assignments(ws, assignments or paths.present_assignments())


def grade(submissions, out_csv, workspace=None, workers=1, isolate=None, limits=None, settings=None, **options):
    """collect + autograde + feedback + export; `options` are autograde.Settings fields."""
    ws = Path(workspace or paths.BUILD / "grading").resolve()
    with autograde.stopped_by_signals():   # SIGINT, SIGTERM: as in autograde, in every step
        try:
            count, problems = collect.collect(submissions, ws)
            if not count and not problems:
                raise SystemExit(f"no submissions found under {submissions}")
            autograde.autograde(ws, isolate=isolate, limits=limits,
                                settings=settings or autograde.Settings(workers=workers, **options))
            for student, assignment, why in problems:
                results.save(ws, results.failed(student, assignment, why))
            feedback.generate(ws)
            rows = export.rows(ws)
            export.write(rows, out_csv)
        except autograde.Interrupted as e:   # while collecting, writing feedback or the CSV
            print(f"\ninterrupted: {e.name}: the results written so far are kept; the same command "
                  f"goes on from there", flush=True)
            raise SystemExit(e.status) from None
    return [SimpleNamespace(**r) for r in rows]


def main(args):
    rows = grade(args.submissions, args.out, args.workspace, settings=autograde.settings_from(args))
    for r in rows:
        extra = f"  ({r.reason})" if r.reason else ""
        flags = f"  [{len(r.flags)} flag(s)]" if r.flags else ""
        print(f"{r.student_id:<16} {r.assignment:<20} {r.status:<22} "
              f"auto {r.autograded_score:g}/{r.autograded_max:g}{extra}{flags}")
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.cells.csv')}; feedback in {args.workspace or 'build/grading'}/feedback/")
