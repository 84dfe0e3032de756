"""Execute solution notebooks with papermill (QUICK by default) and report seconds per notebook.

Outputs go to build/executed/<id>.ipynb; the committed notebooks are never touched. Beside each
goes <id>.parity.json, the notebook's key numbers (archlab.parity: the kernel is told where by
the environment variable ARCHLAB_PARITY_RECORD), which scripts/parity.py compares across devices.
"""

import time

import papermill

from . import nbg, paths

RECORD_ENV = "ARCHLAB_PARITY_RECORD"  # = archlab.parity.ENV (archlab imports torch; this stays light)


def execute(assignment, out_dir=None, **parameters):
    """Run solutions/<id>/<id>.ipynb with papermill; return (output path, seconds)."""
    import os
    for k, v in nbg.KERNEL_ENV.items():
        os.environ.setdefault(k, v)
    out_dir = out_dir or paths.BUILD / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    src = paths.SOLUTIONS / assignment / f"{assignment}.ipynb"
    out = out_dir / f"{assignment}.ipynb"
    record = out_dir / f"{assignment}.parity.json"
    record.unlink(missing_ok=True)  # a failed run must not leave an older run's record behind
    os.environ[RECORD_ENV] = str(record.resolve())
    t0 = time.perf_counter()
    try:
        # a cell that hangs (a stalled kernel) fails the run instead of holding CI until its limit
        papermill.execute_notebook(str(src), str(out), parameters=parameters, kernel_name="python3",
                                   cwd=str(src.parent), progress_bar=False, execution_timeout=600,
                                   start_timeout=120)
    finally:
        del os.environ[RECORD_ENV]
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
