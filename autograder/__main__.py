"""The instructor's command line: python -m autograder VERB ...

    build     [ID ...]                  solutions/<id>/<id>.py -> solutions/<id>/<id>.ipynb
    release   [ID ...]                  build, then nbgrader generate_assignment -> notebooks/<id>/
    execute   [ID ...] [--full] [--device D] [--cold-only]   papermill the solutions, seconds cold and warm
    collect   SOURCE                    submissions (folders, <student>.zip, exchange) -> workspace
    autograde [--workers N | --cluster local:N | --scheduler tcp://HOST:8786] [--threads-per-kernel T] [--force]
                                        grade what has no current result, each in its own jailed kernel
    feedback                            one HTML page per submission: tests, pass/fail, messages
    export    [--out CSV]               scores, status (graded / needs manual grading / failed: why), flags
    status                              counts per assignment
    grade     SOURCE [--out CSV] [autograde's options]   collect + autograde + feedback + export

The workspace (--workspace, default build/grading) holds the gradebook, submitted/, autograded/,
feedback/ and results/ (one file per submission). See autograder/README.md for the isolation design.
"""

import argparse

from . import autograde, build, collect, execute, export, feedback, grade, release, status


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
    verb("release", release, "student notebooks through nbgrader").add_argument("assignments", nargs="*")
    e = verb("execute", execute, "papermill the solution notebooks, seconds per notebook")
    e.add_argument("assignments", nargs="*")
    e.add_argument("--full", action="store_true", help="QUICK=False: the full-size experiments")
    e.add_argument("--device", default=None, help="DEVICE parameter: auto, cpu or cuda")
    e.add_argument("--cold-only", action="store_true", help="time each notebook cold only (no warm rerun)")
    verb("collect", collect, "bring submissions into the workspace", True).add_argument("source")
    autograde.add_arguments(verb("autograde", autograde, "grade collected submissions", True))
    verb("feedback", feedback, "HTML feedback without hidden tests", True)
    verb("export", export, "CSV of scores and status", True).add_argument("--out", default="build/grades.csv")
    verb("status", status, "counts per assignment", True)
    g = verb("grade", grade, "collect + autograde + feedback + export", True)
    g.add_argument("source")
    g.add_argument("--out", default="build/grades.csv")
    autograde.add_arguments(g)
    args = p.parse_args(argv)
    if args.verb == "grade":
        args.submissions = args.source
    args.run(args)


if __name__ == "__main__":
    main()
