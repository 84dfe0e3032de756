"""Execute solution notebooks with papermill (QUICK by default) and report seconds per notebook.

Outputs go to build/executed/<id>.ipynb; the committed notebooks are never touched.
"""

import time

import papermill

from . import nbg, paths


def execute(assignment, out_dir=None, **parameters):
    """Run solutions/<id>/<id>.ipynb with papermill; return (output path, seconds)."""
    import os
    for k, v in nbg.KERNEL_ENV.items():
        os.environ.setdefault(k, v)
    out_dir = out_dir or paths.BUILD / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    src = paths.SOLUTIONS / assignment / f"{assignment}.ipynb"
    out = out_dir / f"{assignment}.ipynb"
    t0 = time.perf_counter()
    # a cell that hangs (a stalled kernel) fails the run instead of holding CI until its limit
    papermill.execute_notebook(str(src), str(out), parameters=parameters, kernel_name="python3",
                               cwd=str(src.parent), progress_bar=False, execution_timeout=600,
                               start_timeout=120)
    return out, time.perf_counter() - t0


def main(args):
    params = {"QUICK": not args.full}
    if args.device:
        params["DEVICE"] = args.device
    rows = []
    for a in args.assignments or paths.present_assignments():
        out, seconds = execute(paths.check_assignment(a), **params)
        rows.append((a, seconds))
        print(f"executed {a} in {seconds:.1f} s -> {out.relative_to(paths.ROOT)}", flush=True)
    print(f"\n| notebook | seconds ({'full' if args.full else 'QUICK'}) |\n| --- | ---: |")
    for a, s in rows:
        print(f"| {a} | {s:.1f} |")
    print(f"| total | {sum(s for _, s in rows):.1f} |")
