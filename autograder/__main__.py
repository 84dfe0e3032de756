"""The instructor's command line: python -m autograder VERB ...

    build    [ID ...]                 solutions/<id>/<id>.py -> solutions/<id>/<id>.ipynb
    release  [ID ...]                 build, then nbgrader generate_assignment -> notebooks/<id>/
    execute  [ID ...] [--full] [--device D]   papermill the solutions (QUICK) into build/executed/
    grade    SUBMISSIONS --out CSV    autograde a folder of submissions, export scores + status
"""

import argparse

from . import build, execute, grade, release


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", required=True)
    b = sub.add_parser("build", help="instructor .ipynb from the jupytext sources")
    b.add_argument("assignments", nargs="*")
    b.set_defaults(run=build.main)
    r = sub.add_parser("release", help="student notebooks through nbgrader")
    r.add_argument("assignments", nargs="*")
    r.set_defaults(run=release.main)
    e = sub.add_parser("execute", help="papermill the solution notebooks, seconds per notebook")
    e.add_argument("assignments", nargs="*")
    e.add_argument("--full", action="store_true", help="QUICK=False: the full-size experiments")
    e.add_argument("--device", default=None, help="DEVICE parameter: auto, cpu or cuda")
    e.set_defaults(run=execute.main)
    g = sub.add_parser("grade", help="autograde submissions and export a CSV")
    g.add_argument("submissions", help="folder of <student>/<assignment>/<assignment>.ipynb")
    g.add_argument("--out", default="build/grades.csv")
    g.add_argument("--workspace", default=None, help="nbgrader workspace (default build/grading)")
    g.set_defaults(run=grade.main)
    args = p.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
