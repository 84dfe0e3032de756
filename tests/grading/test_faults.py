"""Faults a submission can cause on the grader's machine, in the grader's parts, without a notebook:
the jail's capped folder (a tmpfs of `--disk` bytes that only the jail sees), the run folder that
the kernel may no longer write once it answers, and the verdicts the runner draws from a full
folder or a kernel that stopped answering. The same faults through the real grader, in a batch
with an honest submission: tests/grading/test_security.py (test_faults_*).
"""

import asyncio
import os
import pwd
import queue
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyter_client import AsyncKernelClient

from autograder.grading import runner, sandbox

MiB = 2**20


def _jail_available():
    ok, why = sandbox.available()
    if not ok:
        pytest.skip(f"no sandbox here: {why}")


def _mount_points():
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]


WRITER = """
import os
written = 0
try:
    for i in range(64):                        # 1 GiB as files of 16 MiB, each under --fsize
        with open(f"blob-{i}.bin", "wb") as f:
            for _ in range(16):
                f.write(b"x" * 2**20)
                written += 2**20
    print("wrote", written)
except OSError as e:
    print("stopped", written, e.errno)
st = os.statvfs(".")
print("size", st.f_blocks * st.f_frsize, "free", st.f_bavail * st.f_frsize, "cwd", os.getcwd())
"""


@pytest.mark.root
def test_the_jails_folder_holds_its_disk_limit_and_nothing_reaches_the_host(tmp_path):
    """A process in the jail that writes 1 GiB into its folder in files under the file-size limit is
    stopped with ENOSPC at the folder's --disk bytes; the host's folder stays empty and no mount
    is left behind (the tmpfs lived in the jail's namespace)."""
    _jail_available()
    workdir = sandbox.prepare_workdir(tmp_path / "run" / "s--a")
    work = sandbox.work_folder(workdir)
    user = pwd.getpwnam(sandbox.SANDBOX_USER)
    cmd = ["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child",
           sys.executable, "-m", "autograder.grading.jail", "--workdir", str(workdir),
           "--uid", str(user.pw_uid), "--gid", str(user.pw_gid), "--mem", str(4 * 2**30), "--cpu", "60",
           "--fsize", str(256 * MiB), "--work", str(work), "--disk", str(64 * MiB)]
    for p in sandbox.readonly_paths():
        cmd += ["--ro", p]
    r = subprocess.run([*cmd, "--", sys.executable, "-c", WRITER], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()
    assert words[0] == "stopped" and int(words[2]) == 28, r.stdout              # ENOSPC
    assert 48 * MiB <= int(words[1]) <= 64 * MiB, r.stdout                     # at the cap, not before
    assert words[words.index("size") + 1] == str(64 * MiB), r.stdout
    assert words[words.index("cwd") + 1] == str(work), r.stdout
    assert list(work.iterdir()) == [] and sorted(p.name for p in workdir.iterdir()) == ["work"]
    assert not [m for m in _mount_points() if m.startswith(str(tmp_path))]


async def _kernel_writes(workdir, code):
    """Start a jailed kernel in `workdir`, seal its run folder once it answers, run `code`; its stdout."""
    km = sandbox.kernel_manager(workdir, sandbox.Limits(threads=1))
    await km.start_kernel()
    kc = km.client()
    assert isinstance(kc, AsyncKernelClient)
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        km.seal()
        out = []
        reply = await kc.execute_interactive(code, timeout=60,
                                             output_hook=lambda m: out.append(m["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(out), sorted(p.name for p in workdir.iterdir())
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


PROBE_WRITES = """
import os
for p in ["../intruder", "../kernel.json", "own.txt"]:
    try:
        with open(p, "a") as f:
            f.write("x")
        print("wrote", p)
    except OSError as e:
        print("refused", p, e.errno)
"""


@pytest.mark.root
def test_the_kernel_cannot_write_its_run_folder_once_it_answers(tmp_path):
    """Once the kernel answers, its run folder (connection file and sockets, on the host's disk) is
    closed to it: it writes only into its own folder, the capped tmpfs."""
    _jail_available()
    workdir = sandbox.prepare_workdir(tmp_path / "run" / "s--a")
    out, listing = asyncio.run(_kernel_writes(workdir, PROBE_WRITES))
    assert out.splitlines() == ["refused ../intruder 13", "refused ../kernel.json 13", "wrote own.txt"], out
    assert "intruder" not in listing and "kernel.json" in listing
    assert list(sandbox.work_folder(workdir).iterdir()) == []     # own.txt lived in the jail's tmpfs
    assert os.stat(workdir).st_uid == 0


# ---- the runner's verdicts, without a kernel ---------------------------------------------------

def test_a_full_folder_fails_the_submission_and_names_the_limit():
    folder = [("its folder", 512 * MiB)]
    assert runner.disk_reason(folder, [], isolate=True) == \
        "the submission wrote more than 512 MiB into its folder (the disk limit)"
    assert runner.disk_reason([("/tmp", 256 * MiB)], [], isolate=True) == \
        "the submission wrote more than 256 MiB into /tmp (the disk limit)"
    # the kernel was gone before the grader could look: an ENOSPC in an error output says it
    enospc = ["OSError: [Errno 28] No space left on device"]
    assert "No space left on device" in runner.disk_reason([], enospc, isolate=True)
    assert runner.disk_reason([], ["ValueError: shapes differ"], isolate=True) == ""
    # unjailed there is no limit: a full disk is the machine's, not the submission's
    assert runner.disk_reason(folder, enospc, isolate=False) == ""


def test_a_kernel_that_stops_answering_is_the_submissions_fault_after_its_code_ran():
    result = runner.RunResult()
    runner._kernel_silent(result, runner.KernelSilent("_archlab_guard_check('test_causal_mask')"))
    assert result.status == "failed"
    assert result.reason == ("the kernel stopped answering the grader before test_causal_mask "
                             "(a trace function or a blocked interpreter: sys.settrace?)")
    assert result.flags == [f"the kernel did not answer the grading guard before test_causal_mask within "
                            f"{runner.GUARD_SECONDS} s; the notebook was stopped there"]
    result = runner.RunResult()
    runner._kernel_silent(result, runner.KernelSilent("_archlab_guard_remember(['device'])"))
    assert "after a locked cell" in result.reason
    # before any submission code ran it is the grader's problem: raised, a grader error retried later
    with pytest.raises(RuntimeError, match="before any submission code ran"):
        runner._kernel_silent(runner.RunResult(), runner.KernelSilent("_archlab_guard_snapshot()"))


class _SilentKernel:
    def execute(self, *a, **k):
        return "msg-1"

    async def get_shell_msg(self, timeout=None):
        raise queue.Empty


def test_the_guard_says_the_kernel_is_silent_instead_of_queue_empty():
    """nbclient's get_shell_msg raises a bare queue.Empty when nothing comes: the guard call turns
    it into KernelSilent, which names the call (it used to reach the record as "grader error: Empty:")."""
    client = SimpleNamespace(kc=_SilentKernel())
    with pytest.raises(runner.KernelSilent, match=r"_archlab_guard_check\('t1'\)"):
        asyncio.run(runner.GradingClient._guard(client, "_archlab_guard_check('t1')"))


def test_two_gradings_of_one_submission_take_turns(tmp_path):
    """The hub's service and a batch may grade one submission at once: the second waits for the
    first (they share its run folder, which each empties and removes)."""
    import threading
    import time

    from autograder.grading import task
    order = []

    def second():
        with task.one_at_a_time(tmp_path, "s--a"):
            order.append("second in")
    with task.one_at_a_time(tmp_path, "s--a"):
        order.append("first in")
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)
        order.append("first out")
    t.join(10)
    assert order == ["first in", "first out", "second in"]
    with task.one_at_a_time(tmp_path, "s--b"):      # another submission does not wait
        pass


@pytest.mark.root
def test_another_account_takes_a_lock_that_root_made():
    """On the hub the service (root) makes the lock files of the course's workspace, mode 644; an
    instructor's batch under their own account must still take them (flock needs no write access)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make the lock as one account and take it as another")
    import shutil
    import tempfile

    from autograder.grading import results
    top = Path(tempfile.mkdtemp(prefix="archlab-lock-"))   # pytest's tmp_path is closed to other accounts
    try:
        os.chmod(top, 0o755)
        lock = top / "locks" / "s--a.lock"
        with results.locked(lock):
            pass
        os.chmod(lock, 0o644)
        nobody = pwd.getpwnam("nobody")
        pid = os.fork()
        if pid == 0:               # the child becomes another account and takes the lock
            code = 1
            try:
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                with results.locked(lock):
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    assert os.waitstatus_to_exitcode(status) == 0, "another account could not take the lock"
