"""The instructor's command line: python -m autograder VERB ...

    build     [ID ...]                  solutions/<id>/<id>.py -> solutions/<id>/<id>.ipynb
    release   [ID ...]                  build, then nbgrader generate_assignment -> notebooks/<id>/
    publish   ID ... [--due DATE]       nbgrader release_assignment: students fetch it in the hub
    execute   [ID ...] [--full] [--device D] [--cold-only]   papermill the solutions, seconds cold and warm
    bundle    [--out DIR] [--zip]       the student edition: notebooks, archlab, figures; no answers
    solutions [ID ...] [--out DIR]      model solutions for after the deadline: no hidden tests, no rubrics
    collect   SOURCE                    submissions (folders, <student>.zip, exchange) -> workspace
    collect   ID --exchange             each student's latest submission, straight from the exchange
    autograde [--workers N | --cluster local:N | --scheduler tcp://HOST:8786] [--threads-per-kernel T] [--force]
                                        grade what has no current result, each in its own jailed kernel
    feedback  [--release]               one HTML page per submission: tests, pass/fail, messages;
                                        --release: nbgrader release_feedback (Assignments tab)
    export    [--out CSV] [--format csv|canvas]   scores, status, flags; or a Canvas gradebook CSV
    status    [--live]                  counts per assignment; --live: the grading service's queue
    on-submit ID ... [--budget 3/60m] [--before-deadline counts|full] [--off]
                                        grade an assignment on the hub as each submission arrives
    serve                               the hub's grading service (JupyterHub starts it: classroom/service.py)
    grade     SOURCE [--out CSV] [autograde's options]   collect -> autograde -> feedback -> export
    hub       --roster CSV [--port P] [--db-url URL]   JupyterHub for the class (autograder/classroom/hub.py)

The workspace (--workspace, default build/grading) holds the gradebook, submitted/, autograded/,
feedback/ and results/ (one file per submission). See autograder/README.md for the isolation design.

This module is the only one that prints: every verb's arguments are read here, the library
functions it calls take typed arguments and return data, and their progress messages
(Python's logging, logger "autograder") are shown here. An error the instructor can cause
(autograder.errors.CourseError: a misspelt marker, a missing folder, a bad roster) is printed as
one line, and the command exits 1; an interrupted batch exits 130 (SIGINT) or 143 (SIGTERM).
"""

import argparse
import logging
import sys
import warnings
from pathlib import Path

from autograder import grade, paths
from autograder.classroom import exchange, hub, on_submit, service, status_page
from autograder.course import build, bundle, execute, model_solutions, release
from autograder.errors import CourseError
from autograder.grading import autograde, collect
from autograder.reports import canvas, export, feedback, status

DEFAULT_WORKSPACE = "build/grading"


# ---------------------------------------------------------------------------------------------
# course: build, release, publish, execute, bundle, solutions
# ---------------------------------------------------------------------------------------------
def _ids(args):
    return [paths.check_assignment(a) for a in (args.assignments or paths.present_assignments())]


def cmd_build(args):
    for a in _ids(args):
        print("built", build.build(a).relative_to(paths.ROOT))


def cmd_release(args):
    if args.exchange:
        print("note: `release --exchange` is now `publish` (nbgrader keeps generate_assignment and "
              "release_assignment apart); publishing", flush=True)
        return cmd_publish(args)
    if args.due:
        raise CourseError("--due goes with publish (release_assignment to the exchange)")
    for a in _ids(args):
        print("released", release.release(a).relative_to(paths.ROOT))


def cmd_publish(args):
    if not args.assignments:
        raise CourseError("publish needs the assignment id(s) to release to the students")
    due = exchange.parse_due(args.due) if args.due else None
    for a in args.assignments:
        out = exchange.release(args.workspace, a, due)
        print(f"released {a} to the exchange: {out}" + (f" (due {due:%Y-%m-%d %H:%M} UTC)" if due else ""))


def cmd_execute(args):
    params = {"QUICK": not args.full}
    if args.device:
        params["DEVICE"] = args.device
    rows = []
    for a in _ids(args):
        s = execute.cold_and_warm(a, warm=not args.cold_only, **params)
        rows.append((a, s))
        warm = f", warm {s['warm']:.1f} s" if "warm" in s else ""
        print(f"executed {a}: cold {s['cold']:.1f} s{warm} -> build/executed/{a}.ipynb", flush=True)
    size = "full" if args.full else "QUICK"
    print(f"\n| notebook | cold s ({size}) | warm s ({size}) |\n| --- | ---: | ---: |")
    for a, s in rows:
        print(f"| {a} | {s['cold']:.1f} | {s.get('warm', 0):.1f} |" if "warm" in s else f"| {a} | {s['cold']:.1f} | |")
    total = {k: sum(s[k] for _, s in rows) for k in ("cold", "warm") if all(k in s for _, s in rows)}
    print(f"| total | {total['cold']:.1f} | {total['warm']:.1f} |" if "warm" in total
          else f"| total | {total['cold']:.1f} | |")
    print("\ncold: the notebook's caches (build/<id>_*) moved aside, as on a student's first run and in "
          "every graded kernel; warm: run again at once")


def cmd_bundle(args):
    out = bundle.build(args.out, zip=args.zip)
    n = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"student edition: {out} ({n} files, checked: no answers, hidden tests or rubrics)")
    if args.zip:
        print(f"                 {out.with_suffix('.zip')}")


def cmd_solutions(args):
    out_dir = Path(args.out or paths.BUILD / "model_solutions")
    paths.BUILD.mkdir(exist_ok=True)
    for a in _ids(args):
        print("model solutions:", model_solutions.make(a, out_dir, full=args.full))


# ---------------------------------------------------------------------------------------------
# grading: collect, autograde, grade
# ---------------------------------------------------------------------------------------------
def cmd_collect(args):
    if args.exchange:
        count, problems = exchange.collect(args.workspace, paths.check_assignment(args.source))
    else:
        if not Path(args.source).is_dir():
            raise CourseError(f"no folder {args.source}: give a folder of submissions (or an assignment id "
                              f"with --exchange)")
        count, problems = collect.collect(args.source, args.workspace)
    print(f"collected {count} submission(s) into {args.workspace}/submitted")
    for student, assignment, why in problems:
        print(f"  not collected: {student} {assignment}: {why}")


def settings_from(args):
    return autograde.Settings(workers=args.workers, cluster=args.cluster, scheduler=args.scheduler,
                              threads_per_kernel=args.threads_per_kernel, force=args.force,
                              max_tries=args.max_tries)


def cmd_autograde(args):
    records = autograde.autograde(args.workspace, settings_from(args))
    for r in records:
        print(f"{r.student_id:<16} {r.assignment:<20} {r.status:<8} {r.reason}")


def cmd_grade(args):
    if not Path(args.source).exists():
        raise CourseError(f"no folder {args.source}: give a folder of submissions")
    rows = grade.grade(args.source, args.out, args.workspace, settings_from(args))
    _print_rows([vars(r) for r in rows])
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.cells.csv')}; feedback in {args.workspace}/feedback/")


def _print_rows(rows):
    for r in rows:
        extra = f"  ({r['reason']})" if r["reason"] else ""
        flags = f"  [{len(r['flags'])} flag(s)]" if r["flags"] else ""
        print(f"{r['student_id']:<16} {r['assignment']:<20} {r['status']:<22} "
              f"auto {r['autograded_score']:g}/{r['autograded_max']:g}{extra}{flags}")


# ---------------------------------------------------------------------------------------------
# reports: feedback, export, status
# ---------------------------------------------------------------------------------------------
def cmd_feedback(args):
    if args.release:
        written, released = exchange.release_feedback(args.workspace)
        print(f"wrote {len(written)} feedback page(s); released {len(released)} through the exchange")
        return
    for p in feedback.generate(args.workspace):
        print("wrote", p)


def cmd_export(args):
    if args.format == "canvas":
        out = canvas.write(args.workspace, args.out)
        print(f"wrote {out} (Canvas gradebook import)")
        return
    rows = export.rows(args.workspace)
    export.write(rows, args.out)
    _print_rows(rows)
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.cells.csv')}")


def cmd_report(args):
    from autograder.reports import report
    out = Path(args.out) if args.out else Path(args.workspace) / "report"
    reports = report.build(args.workspace, out, args.assignments or None, threshold=args.threshold)
    if not reports:
        print(f"no graded submission in {args.workspace}: wrote an empty course page, {out / 'index.html'}")
        return
    for a, rep in reports.items():
        print(f"{a}: {rep.summary.n} counted, {len(rep.failed)} failed, {len(rep.flagged)} flagged"
              + (f" ({rep.note})" if rep.note else ""))
    print(f"wrote {out / 'index.html'} and one page and five CSV files per assignment")


def cmd_status(args):
    if args.live:
        return _live_status(args.workspace)
    counts = status.counts(args.workspace)
    if not counts:
        print("nothing graded yet in", args.workspace)
    for assignment, c in sorted(counts.items()):
        print(f"{assignment:<20} graded {c['graded']:>3}  needs manual grading {c['needs manual grading']:>3}  "
              f"failed {c['failed']:>3}  flagged {c['flagged']:>3}")


def _live_status(ws):
    for line in service.live_lines(ws):
        print(line)


def cmd_on_submit(args):
    if not args.assignments:
        raise CourseError("on-submit needs the assignment id(s)")
    for a in args.assignments:
        paths.check_assignment(a)
        rule = on_submit.set_rule(args.workspace, a, enabled=not args.off, before_deadline=args.before_deadline,
                                  budget=args.budget)
        if not rule.enabled:
            print(f"{a}: graded on submit is off (submissions wait for collect + autograde)")
            continue
        print(f"{a}: graded on submit; budget {rule.bucket or 'unlimited'}; before the deadline feedback shows "
              + ("hidden checks as counts" if rule.before_deadline == "counts" else "everything"))


def cmd_serve(args):
    service.serve(service.ServiceSettings(workspace=args.workspace, workers=args.workers, max_tries=args.max_tries,
                                          poll_s=args.poll, cluster=args.cluster, scheduler=args.scheduler))


def cmd_status_page(args):
    status_page.serve(args.workspace)


# ---------------------------------------------------------------------------------------------
# classroom: hub
# ---------------------------------------------------------------------------------------------
def cmd_hub(args):
    s = hub.HubSettings(roster=args.roster, prefix=args.prefix, envs=args.envs or "", port=args.port, ip=args.ip,
                        db_url=args.db_url or "", course_id=args.course_id,
                        instructors_group=args.instructors_group, late_policy=args.late_policy,
                        python=args.python or "", ssl_cert=args.ssl_cert or "", ssl_key=args.ssl_key or "",
                        setup_only=args.setup_only, grading_workers=args.grading_workers,
                        grading_cluster=args.grading_cluster or "", grading_scheduler=args.grading_scheduler or "")
    layout = hub.setup(s)
    print(f"course folder (--workspace for the instructor verbs): {layout.course}")
    print(f"exchange: {layout.exchange}; students' environment: {layout.env}")
    print(f"first passwords of new accounts: {layout.passwords} (root only)")
    if s.setup_only:
        return
    scheme = "https" if s.ssl_cert else "http"
    print(f"JupyterHub on {scheme}://{s.ip}:{s.port}/ (Ctrl-C stops it and every user's server)", flush=True)
    hub.serve(layout)


# ---------------------------------------------------------------------------------------------
def add_grading_options(parser):
    """The backend and threading options, shared by `autograde` and `grade` (autograde.Settings)."""
    parser.add_argument("--workers", type=int, default=1, help="local pool: submissions graded at once (default 1)")
    parser.add_argument("--cluster", metavar="local:N", help="grade on a Dask LocalCluster of N worker processes")
    parser.add_argument("--scheduler", metavar="tcp://HOST:8786", help="grade on a running Dask cluster")
    parser.add_argument("--threads-per-kernel", type=int, default=None,
                        help="threads of torch/OpenMP/MKL/numba in each kernel (default: cores / kernels at once)")
    parser.add_argument("--force", action="store_true", help="regrade submissions that already have a current result")
    parser.add_argument("--max-tries", type=int, default=3,
                        help="starts of one submission whose worker keeps dying before it is failed (default 3)")


def parser():
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.split("\n\nThis module")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", required=True)

    def verb(name, run, help_, workspace=False):
        s = sub.add_parser(name, help=help_)
        if workspace:
            s.add_argument("--workspace", default=DEFAULT_WORKSPACE,
                           help=f"grading workspace (default {DEFAULT_WORKSPACE})")
        s.set_defaults(run=run)
        return s

    verb("build", cmd_build, "instructor .ipynb from the jupytext sources").add_argument("assignments", nargs="*")
    r = verb("release", cmd_release, "student notebooks through nbgrader (generate_assignment)", True)
    r.add_argument("assignments", nargs="*")
    r.add_argument("--exchange", action="store_true", help="the old spelling of `publish`: still works")
    r.add_argument("--due", help=argparse.SUPPRESS)
    pub = verb("publish", cmd_publish, "release assignments to the hub's students (nbgrader release_assignment)", True)
    pub.add_argument("assignments", nargs="*")
    pub.add_argument("--due", help="due date, ISO 8601 (UTC unless it has a zone)")
    e = verb("execute", cmd_execute, "papermill the solution notebooks, seconds per notebook")
    e.add_argument("assignments", nargs="*")
    e.add_argument("--full", action="store_true", help="QUICK=False: the full-size experiments")
    e.add_argument("--device", default=None, help="DEVICE parameter: auto, cpu or cuda")
    e.add_argument("--cold-only", action="store_true", help="time each notebook cold only (no warm rerun)")
    b = verb("bundle", cmd_bundle, "the student edition (folder, and a zip with --zip)")
    b.add_argument("--out", default=None, help="folder to write (default build/student)")
    b.add_argument("--zip", action="store_true", help="also write OUT.zip")
    m = verb("solutions", cmd_solutions, "model solutions: executed, without hidden tests or rubrics")
    m.add_argument("assignments", nargs="*")
    m.add_argument("--out", default=None, help="folder to write (default build/model_solutions)")
    m.add_argument("--full", action="store_true", help="QUICK=False: the full-size experiments")
    c = verb("collect", cmd_collect, "bring submissions into the workspace", True)
    c.add_argument("source", help="a folder, or with --exchange the assignment id")
    c.add_argument("--exchange", action="store_true", help="collect SOURCE (an assignment id) from the exchange")
    add_grading_options(verb("autograde", cmd_autograde, "grade collected submissions", True))
    verb("feedback", cmd_feedback, "HTML feedback without hidden tests", True).add_argument(
        "--release", action="store_true", help="also release it through the exchange (nbgrader release_feedback)")
    x = verb("export", cmd_export, "CSV of scores and status", True)
    x.add_argument("--out", default="build/grades.csv")
    x.add_argument("--format", choices=("csv", "canvas"), default="csv",
                   help="canvas: a CSV Canvas's gradebook imports")
    rp = verb("report", cmd_report, "the instructor's report: scores, tests, named mistakes, look-alike answers", True)
    rp.add_argument("assignments", nargs="*")
    rp.add_argument("--out", default=None, help="folder to write (default WORKSPACE/report)")
    rp.add_argument("--threshold", type=float, default=0.8, help="list answer pairs this alike or more (0-1)")
    verb("status", cmd_status, "counts per assignment", True).add_argument(
        "--live", action="store_true", help="the grading service: queue, latency, failures")
    o = verb("on-submit", cmd_on_submit, "grade an assignment on the hub as each submission arrives", True)
    o.add_argument("assignments", nargs="*")
    o.add_argument("--budget", default=None, help="gradings per student: N/TIME (3/60m, 2/30s) or unlimited")
    o.add_argument("--before-deadline", choices=("counts", "full"), default=None,
                   help="feedback before the deadline: hidden checks as counts (default) or everything")
    o.add_argument("--off", action="store_true", help="stop grading it on submit")
    sv = verb("serve", cmd_serve, "the hub's grading service (JupyterHub runs it)", True)
    sv.add_argument("--workers", type=int, default=2, help="submissions graded at once (default 2)")
    sv.add_argument("--max-tries", type=int, default=3)
    sv.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the exchange (at most 2)")
    sv.add_argument("--cluster", metavar="local:N", help="grade on a Dask LocalCluster of N worker processes")
    sv.add_argument("--scheduler", metavar="tcp://HOST:8786", help="grade on a running Dask cluster")
    verb("status-page", cmd_status_page, "the service's queue as a hub page for instructors (JupyterHub runs it)",
         True)
    g = verb("grade", cmd_grade, "collect -> autograde -> feedback -> export", True)
    g.add_argument("source")
    g.add_argument("--out", default="build/grades.csv")
    add_grading_options(g)
    h = verb("hub", cmd_hub, "JupyterHub for the class: accounts, Assignments tab, Formgrader, exchange")
    h.add_argument("--roster", required=True, help="CSV: id,name,role,lms_id (autograder/classroom/roster.py)")
    h.add_argument("--port", type=int, default=8000)
    h.add_argument("--ip", default="127.0.0.1", help="0.0.0.0 to serve the class (with --ssl-cert/--ssl-key)")
    h.add_argument("--db-url", help="gradebook: sqlite:///PATH (default: in the course folder) or postgresql://...")
    h.add_argument("--prefix", default="/opt/archlab-hub", help="course folder, exchange, edition, state")
    h.add_argument("--envs", help="where the students' environments are cached (default PREFIX/envs)")
    h.add_argument("--course-id", default="architectures-workbook")
    h.add_argument("--instructors-group", default="archlab-instructors")
    h.add_argument("--late-policy", default="none", help="none, zero or per-day:PERCENT")
    h.add_argument("--python", help="the students' Python 3.11 (default: Debian's)")
    h.add_argument("--ssl-cert")
    h.add_argument("--ssl-key")
    h.add_argument("--setup-only", action="store_true", help="prepare everything, do not start JupyterHub")
    h.add_argument("--grading-workers", type=int, default=2,
                   help="the grading service's submissions graded at once (default 2)")
    h.add_argument("--grading-cluster", metavar="local:N",
                   help="the service grades on a Dask LocalCluster of N workers")
    h.add_argument("--grading-scheduler", metavar="tcp://HOST:8786",
                   help="the service grades on a running Dask cluster")
    return p


def _show_log():
    """The library's progress messages (logger "autograder"), as plain lines on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("autograder")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv=None):
    args = parser().parse_args(argv)
    _show_log()
    # nbgrader's gradebook makes SQLAlchemy warn about its own autoflush; nothing an instructor can act on
    warnings.filterwarnings("ignore", message=".*not in session.*autoflush.*")
    try:
        args.run(args)
    except autograde.Interrupted as stop:
        print(f"\ninterrupted: {stop}", flush=True)
        sys.exit(stop.status)
    except CourseError as e:
        print(f"python -m autograder {args.verb}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
