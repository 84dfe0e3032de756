"""Stopping a batch: SIGINT (Ctrl-C) or SIGTERM (what JupyterHub, systemd and Kubernetes send)
to `python -m autograder grade`, on the local pool with one worker (graded in the command's own
process), with two worker processes, and on a Dask LocalCluster of two.

Each time the command must stop within STOP_S seconds with 130 (SIGINT) or 143 (SIGTERM) and a
line "interrupted: ...", and leave nothing running: no process of its session (its workers) and
no kernel (kernels run in sessions of their own; their command lines name the workspace). The
results written before the signal are kept, nothing else is written (a kernel killed by the
stop is not a failed submission), and the same command, run again, grades only the rest.

A student's code that swallows KeyboardInterrupt and ignores the signals keeps nothing going:
the batch's signal never reaches the kernel, which is killed.

The command runs in a session of its own, so that a signal can go to it alone (its pid) or to
its whole process group, workers included, as Ctrl-C in a terminal does; and it starts with
SIGINT ignored, as a background job of a script (`... &`) does: a batch run from a CI script
once ignored the SIGINT of tests/test_grading_dask.py and graded everything.
"""

import contextlib
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import nbtools
from autograder import paths
from autograder.grading import autograde

NB = "01_self_attention"
pytestmark = [pytest.mark.skipif(NB not in paths.present_assignments(), reason="needs notebook 01"),
              pytest.mark.slow, pytest.mark.notebooks]   # real batches, kernels and all
BACKENDS = {"workers-1": ["--workers", "1"], "workers-2": ["--workers", "2"], "dask-local-2": ["--cluster", "local:2"]}
STOP_S = 10        # from the signal to the command's exit
STUDENTS = ("alice", "bob", "carol")    # correct, the untouched release, the first typical mistakes
STUBBORN = "kim"
SWALLOWS = """import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open("swallowing", "w").close()
while True:
    try:
        time.sleep(1)
    except KeyboardInterrupt:
        pass
"""


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Built once: the submissions of STUDENTS, kim's (its first cell swallows KeyboardInterrupt
    forever), and a workspace whose gradebook holds the assignment. Each test copies the workspace."""
    base = tmp_path_factory.mktemp("interrupt")
    rel = nbtools.release_nb(NB)
    answers = {"alice": nbtools.solution_answers(NB), "bob": {},
               "carol": {g: w.code for g, w in nbtools.first_wrong(NB, "visible").items()}}
    for student in STUDENTS:
        _write(nbtools.submission(rel, answers[student]), base / "subs" / student / NB / f"{NB}.ipynb")
    stubborn = nbtools.submission(rel, {})
    next(c for c in stubborn.cells if c.cell_type == "code").source = SWALLOWS   # its first cell: no wait for imports
    _write(stubborn, base / "stubborn" / STUBBORN / NB / f"{NB}.ipynb")
    autograde.prepare_assignments(base / "ws", [NB])
    return base


def _write(nb, path):
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)


def _as_a_background_job():
    """What a shell script's `... &` passes on (and what CI runners and pytest under one inherit):
    SIGINT ignored. The batch must stop on SIGINT all the same."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture
def grade_cmd():
    """grade_cmd(subs, ws, backend, log): the instructor's command, in a session of its own, its
    output in `log`. What a failed test leaves running of it (the command, or workers it left
    behind when it died) is killed; the kernels die with the processes that started them."""
    started = []

    def start(subs, ws, backend, log):
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        with open(log, "w") as out:
            cli = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(subs), "--workspace", str(ws),
                                    "--out", str(ws.parent / "grades.csv"), *BACKENDS[backend]],
                                   cwd=paths.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=_as_a_background_job)
        started.append((cli, ws))
        return cli

    yield start
    for cli, ws in started:
        if cli.poll() is None or _left_behind(cli, ws):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(cli.pid, signal.SIGKILL)
            cli.wait()


def _wait_for(found, cli, log, timeout=300):
    deadline = time.monotonic() + timeout
    while not found():
        assert cli.poll() is None, f"the command ended before the signal: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"waited {timeout} s: {log.read_text()[-3000:]}"
        time.sleep(0.1)


def _results(ws):
    return {p.parent.name: json.loads(p.read_text()) for p in (ws / "results").glob("*/*.json")}


def _stop(cli, log, sig, whole_group=False):
    """Send `sig`; the command's output once it has exited (the test fails if it takes over STOP_S)."""
    (os.killpg if whole_group else os.kill)(cli.pid, sig)
    try:
        cli.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        os.killpg(cli.pid, signal.SIGKILL)
        cli.wait()
        pytest.fail(f"still running {STOP_S} s after {sig.name}: {log.read_text()[-3000:]}")
    out = log.read_text()
    assert cli.returncode == 128 + sig, out[-3000:]
    assert re.search(f"^interrupted: {sig.name}", out, re.M), out[-3000:]
    return out


def _swallowing(ws):
    """Has kim's kernel reached its loop? Its marker is in its own folder: on the host's disk
    unjailed; jailed, in a tmpfs of the jail's namespace, seen through the kernel's /proc/PID/root."""
    marker = f"{ws}/run/{STUBBORN}--{NB}/work/swallowing"
    return os.path.exists(marker) or bool(glob.glob(f"/proc/[0-9]*/root{marker}"))


def _left_behind(cli, ws):
    """Processes, zombies aside, in the command's session or whose command line names the workspace."""
    left = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            state, _, _, session = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:4]
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:     # it ended meanwhile
            continue
        if state != "Z" and (int(session) == cli.pid or str(ws) in cmd):
            left.append(f"{proc.name}: {cmd[:200]}")
    return left


def _nothing_left(cli, ws, grace_s=3):
    """A kernel dies when the process that started it does (SIGKILL from the kernel, at once); give
    it `grace_s` to be gone from /proc."""
    deadline = time.monotonic() + grace_s
    while (left := _left_behind(cli, ws)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, left


# On Dask the same (stopped, then resumed: only the rest graded) is
# tests/grading/test_cluster.py::test_interrupted_then_resumed_with_a_worker_killed_mid_task; the
# LocalCluster's stop on either signal is in the test below.
@pytest.mark.parametrize("backend", ["workers-1", "workers-2"])
def test_ctrl_c_keeps_the_finished_results_and_a_rerun_grades_the_rest(prepared, grade_cmd, tmp_path, backend):
    ws = tmp_path / "ws"
    shutil.copytree(prepared / "ws", ws)
    log = tmp_path / "grade.log"
    cli = grade_cmd(prepared / "subs", ws, backend, log)

    def one_done_and_another_running():   # (a kernel's connection file is there while it runs)
        done = _results(ws)
        return done and any((ws / "run" / f"{s}--{NB}" / "kernel.json").exists() for s in STUDENTS if s not in done)

    _wait_for(one_done_and_another_running, cli, log)
    at_signal = _results(ws)
    _stop(cli, log, signal.SIGINT)
    _nothing_left(cli, ws)
    kept = _results(ws)
    assert at_signal.keys() <= kept.keys() and len(kept) < len(STUDENTS), sorted(kept)
    # only what finished: no result says a kernel the stop killed died
    assert all(r["status"] == "graded" for r in kept.values()), kept

    rerun = subprocess.run([sys.executable, "-m", "autograder", "grade", str(prepared / "subs"), "--workspace", str(ws),
                            "--out", str(tmp_path / "grades.csv"), *BACKENDS[backend]], cwd=paths.ROOT,
                           env={**os.environ, "PYTHONWARNINGS": "ignore"}, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    left = len(STUDENTS) - len(kept)
    assert f"graded {left} submission(s) in" in rerun.stdout and f"; {len(kept)} already had a current result" \
        in rerun.stdout, rerun.stdout[-3000:]
    final = _results(ws)
    assert sorted(final) == sorted(STUDENTS) and all(r["status"] == "graded" for r in final.values())
    assert all(final[s]["seconds"] == r["seconds"] for s, r in kept.items()), "a kept result was graded again"
    rows = {r.split(",")[0]: r for r in (tmp_path / "grades.csv").read_text().splitlines()[1:]}
    assert sorted(rows) == sorted(STUDENTS)


@pytest.mark.parametrize("backend, sig, whole_group", [
    ("workers-1", signal.SIGINT, False),
    ("workers-1", signal.SIGTERM, False),
    ("workers-2", signal.SIGTERM, False),
    ("workers-2", signal.SIGINT, True),          # Ctrl-C in a terminal: the workers get it too
    ("dask-local-2", signal.SIGTERM, False),
    ("dask-local-2", signal.SIGINT, True),
], ids=lambda v: v.name if isinstance(v, signal.Signals) else {True: "to-its-group", False: "to-it-alone"}.get(v, v))
def test_a_kernel_that_swallows_keyboardinterrupt_does_not_keep_the_batch_going(prepared, grade_cmd, tmp_path, backend,
                                                                                 sig, whole_group):
    ws = tmp_path / "ws"
    shutil.copytree(prepared / "ws", ws)
    log = tmp_path / "grade.log"
    cli = grade_cmd(prepared / "stubborn", ws, backend, log)
    _wait_for(lambda: _swallowing(ws), cli, log)
    out = _stop(cli, log, sig, whole_group)
    _nothing_left(cli, ws)
    assert not _results(ws), "the killed submission got a result: the rerun would not grade it"
    assert "0 of 1 recorded" in out, out[-3000:]
