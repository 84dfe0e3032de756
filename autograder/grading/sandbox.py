"""Kernels for grading: each submission's kernel runs jailed (see autograder.grading.jail) as an
unprivileged user, with memory, CPU-time and file-size limits, no network, and a filesystem
that holds only the system, Python, the course's environment and the submission's own folder.

The kernel talks to the grader over Unix sockets in the submission's run folder (IPC transport),
which is why it needs no network at all. The run folder, `WS/run/<student>--<assignment>/`:

    kernel.json, kernel-1 ... kernel-5   the connection file and the kernel's sockets
    work/                                the submission's folder: its working directory and HOME

Jailed, `work/` is a tmpfs of `Limits.disk_bytes` that exists only inside the jail (it dies with
the kernel's namespace, and its memory with it), and the kernel may create its sockets in the run
folder only until it answers: then `seal` takes that right away. So a submission can write
`disk_bytes` in all into its folder and nothing on the grader's disk. The task removes the run
folder after grading (autograder.grading.task).
"""

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jupyter_client import AsyncKernelManager

from autograder import contract, paths


@dataclass
class Limits:
    memory_bytes: int = 6 * 2**30       # address space of the kernel (RLIMIT_AS)
    cpu_seconds: int = 900              # CPU time of the kernel (RLIMIT_CPU)
    file_bytes: int = 256 * 2**20       # largest file it may write (RLIMIT_FSIZE)
    cell_seconds: int = 180             # wall clock per cell
    notebook_seconds: int = 900         # wall clock per notebook
    output_bytes: int = 2 * 2**20       # outputs kept per notebook; the rest is dropped
    disk_bytes: int = 512 * 2**20       # all it may write into its folder (jailed: a tmpfs of this size)
    threads: int | None = None          # threads of torch, OpenMP, MKL, OpenBLAS, numba (None: not set)


# Every library that starts a thread pool in a course notebook, and the variable it reads.
# torch takes its intra-op thread count from OMP_NUM_THREADS; numba from NUMBA_NUM_THREADS.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def usable_cores():
    """Cores this process may run on (its CPU affinity: a container's or a Slurm job's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_kernel(kernels_at_once, cores=None):
    """Each kernel's share of the machine: cores / kernels running at once, at least 1.

    Kernels that each start one thread per core fight over the cores: with two workers on two
    cores, cells made of many small operations slowed by up to 25x (issue 16)."""
    return max(1, (cores or usable_cores()) // max(1, kernels_at_once))


SANDBOX_USER = "nobody"


@lru_cache(maxsize=1)
def available():
    """(True, "") if jailed kernels can be started here, else (False, why)."""
    if os.geteuid() != 0:
        return False, "the grader is not running as root (needed to create namespaces and drop privileges)"
    if not all(shutil.which(tool) for tool in ("unshare", "mount", "setpriv")):
        return False, "util-linux's unshare/mount/setpriv are not installed"
    r = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "true"], capture_output=True)
    if r.returncode:
        return False, f"unshare failed: {r.stderr.decode().strip()}"
    try:
        pwd.getpwnam(SANDBOX_USER)
    except KeyError:
        return False, f"no user {SANDBOX_USER!r}"
    return True, ""


def readonly_paths():
    """What a grading kernel must read: the Python install, the venv, archlab."""
    base = os.path.realpath(sys.base_prefix)
    return [base, str(Path(sys.prefix).resolve()), str(paths.ROOT / "archlab")]


def work_folder(workdir):
    """The submission's own folder inside its run folder: its working directory and HOME."""
    return Path(workdir) / "work"


def kernel_env(work, threads=None):
    w = str(work)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", *THREAD_VARIABLES)}
    if threads is not None:
        env.update({k: str(threads) for k in THREAD_VARIABLES})
    env.update(contract.KERNEL_ENV)
    env.update(HOME=w, TMPDIR="/tmp", MPLCONFIGDIR=f"{w}/.config/matplotlib", IPYTHONDIR=f"{w}/.ipython",
               JUPYTER_RUNTIME_DIR=w, JUPYTER_CONFIG_DIR=f"{w}/.jupyter", JUPYTER_DATA_DIR=f"{w}/.jupyter-data",
               NUMBA_CACHE_DIR=f"{w}/.numba", HF_HOME=f"{w}/.hf",
               NBGRADER_EXECUTION="autograde", PYTHONDONTWRITEBYTECODE="1")
    return env


class PlainKernelManager(AsyncKernelManager):
    """A kernel in the submission's folder (`work_folder`), with its own environment, over IPC
    sockets in the run folder.

    Used as it is only when no jail can be made (grader not root, no namespaces): then nothing
    caps what it writes, and the task still removes the folder after grading."""

    def __init__(self, workdir, limits, **kw):
        workdir = Path(workdir)
        super().__init__(kernel_name="python3", transport="ipc", ip=str(workdir / "kernel"),
                         connection_file=str(workdir / "kernel.json"), **kw)
        self.workdir, self.limits = workdir, limits
        self.work = work_folder(workdir)

    def seal(self):
        """Called once the kernel answers, before any submission code runs (nothing to do here)."""

    def full_spaces(self):
        """[(where, size in bytes)] of the kernel's writable spaces that are full (none known here)."""
        return []

    def command(self, kernel_cmd):
        # if the grader (a worker process) dies, its kernel dies with it, never an orphan
        return ["setpriv", "--pdeathsig", "KILL", *kernel_cmd] if shutil.which("setpriv") else kernel_cmd

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        kw["env"], kw["cwd"] = kernel_env(self.work, self.limits.threads), str(self.work)
        await super()._async_launch_kernel(self.command(kernel_cmd), **kw)
        process = getattr(self.provisioner, "process", None)   # jupyter_client's Popen of the kernel
        if process is not None:
            with _launched_lock:
                _launched.add(process)


_launched = weakref.WeakSet()    # the kernels this process started (their Popen), while referenced
_launched_lock = threading.Lock()


def kill_kernels():
    """SIGKILL every kernel this process started that still runs, with its process group
    (jupyter_client starts each in a session of its own). Only SIGKILL stops a jailed kernel:
    `unshare` ignores SIGINT and SIGTERM while it waits, and the kernel, its pid namespace's init,
    gets no signal it has no handler for; the namespace dies with it. The batch calls this when it
    is interrupted (autograder.pool)."""
    with _launched_lock:
        processes = list(_launched)
    for p in processes:
        if p.poll() is None:      # not reaped yet: its pid, and its group's, are still its own
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                p.kill()


class JailedKernelManager(PlainKernelManager):
    """The same kernel, its command wrapped by the jail (autograder.grading.jail)."""

    def command(self, kernel_cmd):
        user = pwd.getpwnam(SANDBOX_USER)
        # the kernel reads its connection file through the group, and may not write it
        os.chown(self.connection_file, 0, user.pw_gid)
        os.chmod(self.connection_file, 0o640)
        lim = self.limits
        # setpriv --pdeathsig: if the grader (a worker process) dies, its kernel dies with it
        # (unshare --kill-child then takes the whole pid namespace down), never an orphan
        wrapped = ["setpriv", "--pdeathsig", "KILL",
                   "unshare", "--mount", "--net", "--pid", "--fork", "--kill-child",
                   sys.executable, "-m", "autograder.grading.jail", "--workdir", str(self.workdir),
                   "--uid", str(user.pw_uid), "--gid", str(user.pw_gid),
                   "--mem", str(lim.memory_bytes), "--cpu", str(lim.cpu_seconds),
                   "--fsize", str(lim.file_bytes), "--work", str(self.work), "--disk", str(lim.disk_bytes)]
        for p in readonly_paths():
            wrapped += ["--ro", p]
        return wrapped + ["--", *kernel_cmd]

    def sockets(self):
        return [f"{self.ip}-{port}" for port in (self.shell_port, self.iopub_port, self.stdin_port,
                                                 self.control_port, self.hb_port)]

    def seal(self, wait_s=5.0):
        """Once the kernel answers (its sockets exist; the heartbeat's thread may bind last), the
        run folder becomes read-only to it: it holds only what the grader and the kernel need to
        talk, and everything the submission writes goes to its capped folder."""
        deadline = time.monotonic() + wait_s
        while not all(os.path.exists(s) for s in self.sockets()) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.chmod(self.workdir, 0o750)

    def _jailed_pid(self):
        """The host's pid of the jailed kernel: the child of `unshare`, whose Popen this manager holds."""
        process = getattr(self.provisioner, "process", None)
        if process is None or process.poll() is not None:
            return None
        try:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def full_spaces(self):
        """[(where, size in bytes)] of the jail's writable spaces (its folder, /tmp, /dev/shm) that
        are full, read from the host through the running kernel's root (/proc/PID/root); [] when the
        kernel no longer runs or /proc cannot tell (the runner then looks for ENOSPC in the errors).
        Full: less than FULL_MARGIN bytes or no inode left, which is where a write that would pass
        the limit stops (ENOSPC)."""
        pid = self._jailed_pid()
        if pid is None:
            return []
        full = []
        for where, path in (("its folder", str(self.work)), ("/tmp", "/tmp"), ("/dev/shm", "/dev/shm")):
            try:
                st = os.statvfs(f"/proc/{pid}/root{path}")
            except OSError:
                continue
            if st.f_bavail * st.f_frsize < FULL_MARGIN or st.f_favail == 0:
                full.append((where, st.f_blocks * st.f_frsize))
        return full


FULL_MARGIN = 2**20   # a writable space with less free is full: its limit stopped a write


def prepare_workdir(workdir, isolate=True):
    """An empty run folder for one submission with its empty `work/` folder. Isolated, the run
    folder is root's, writable by the sandbox user's group until `seal`, and `work/` is only the
    place where the jail mounts the submission's tmpfs."""
    workdir = Path(workdir)
    remove_workdir(workdir)
    work_folder(workdir).mkdir(parents=True)
    if isolate:
        user = pwd.getpwnam(SANDBOX_USER)
        os.chown(workdir, 0, user.pw_gid)
        os.chmod(workdir, 0o770)
    return workdir


def remove_workdir(workdir):
    """Remove a submission's run folder, whatever is left in it (a killed worker's too)."""
    shutil.rmtree(workdir, ignore_errors=True)


def kernel_manager(workdir, limits, isolate=True):
    return (JailedKernelManager if isolate else PlainKernelManager)(workdir, limits)
