"""The instructor's command line: python -m autograder VERB ...

    build     [ID ...]                  solutions/<id>/<id>.py -> solutions/<id>/<id>.ipynb
    release   [ID ...]                  build, then nbgrader generate_assignment -> notebooks/<id>/
    release   ID --exchange [--due DATE]   nbgrader release_assignment: students fetch it in the hub
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
    status                              counts per assignment
    grade     SOURCE [--out CSV] [autograde's options]   collect + autograde + feedback + export
    hub       --roster CSV [--port P] [--db-url URL]   JupyterHub for the class (autograder/hub.py)

The workspace (--workspace, default build/grading) holds the gradebook, submitted/, autograded/,
feedback/ and results/ (one file per submission). See autograder/README.md for the isolation design.
"""

import argparse

from . import (autograde, build, bundle, collect, execute, export, feedback, grade, hub, model_solutions,
               release, status)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", required=True)

    def verb(name, module, help_, workspace=False):
        s = sub.add_parser(name, help=help_)
        if workspace:
            s.add_argument("--workspace", default="build/grading", help="grading workspace (default build/grading)")
        s.set_defaults(run=module.main)
        return s

    verb("build", build, "instructor .ipynb from the jupytext sources").add_argument("assignments", nargs="*")
    r = verb("release", release, "student notebooks through nbgrader; --exchange: to the hub's students", True)
    r.add_argument("assignments", nargs="*")
    r.add_argument("--exchange", action="store_true", help="nbgrader release_assignment from --workspace")
    r.add_argument("--due", help="with --exchange: due date, ISO 8601 (UTC unless it has a zone)")
    e = verb("execute", execute, "papermill the solution notebooks, seconds per notebook")
    e.add_argument("assignments", nargs="*")
    e.add_argument("--full", action="store_true", help="QUICK=False: the full-size experiments")
    e.add_argument("--device", default=None, help="DEVICE parameter: auto, cpu or cuda")
    e.add_argument("--cold-only", action="store_true", help="time each notebook cold only (no warm rerun)")
    b = verb("bundle", bundle, "the student edition (folder, and a zip with --zip)")
    b.add_argument("--out", default=None, help="folder to write (default build/student)")
    b.add_argument("--zip", action="store_true", help="also write OUT.zip")
    m = verb("solutions", model_solutions, "model solutions: executed, without hidden tests or rubrics")
    m.add_argument("assignments", nargs="*")
    m.add_argument("--out", default=None, help="folder to write (default build/model_solutions)")
    m.add_argument("--full", action="store_true", help="QUICK=False: the full-size experiments")
    c = verb("collect", collect, "bring submissions into the workspace", True)
    c.add_argument("source", help="a folder, or with --exchange the assignment id")
    c.add_argument("--exchange", action="store_true", help="collect SOURCE (an assignment id) from the exchange")
    autograde.add_arguments(verb("autograde", autograde, "grade collected submissions", True))
    verb("feedback", feedback, "HTML feedback without hidden tests", True).add_argument(
        "--release", action="store_true", help="also release it through the exchange (nbgrader release_feedback)")
    x = verb("export", export, "CSV of scores and status", True)
    x.add_argument("--out", default="build/grades.csv")
    x.add_argument("--format", choices=("csv", "canvas"), default="csv", help="canvas: a CSV Canvas's gradebook imports")
    verb("status", status, "counts per assignment", True)
    g = verb("grade", grade, "collect + autograde + feedback + export", True)
    g.add_argument("source")
    g.add_argument("--out", default="build/grades.csv")
    autograde.add_arguments(g)
    h = verb("hub", hub, "JupyterHub for the class: accounts, Assignments tab, Formgrader, exchange")
    h.add_argument("--roster", required=True, help="CSV: id,name,role,lms_id (autograder/roster.py)")
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
    args = p.parse_args(argv)
    if args.verb == "grade":
        args.submissions = args.source
    args.run(args)


if __name__ == "__main__":
    main()
