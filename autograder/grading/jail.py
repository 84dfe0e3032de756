"""Start a command in a jail: run as root inside fresh mount/network/pid namespaces
(`unshare --mount --net --pid --fork`), it builds an empty root filesystem holding only what a
grading kernel needs, changes into it, drops to an unprivileged user, applies resource limits
and execs the command.

What the jailed process sees, read-only: the system (/usr, /etc and the /bin, /lib symlinks),
the Python installation, the course's virtual environment and archlab; read-write: its own
submission folder, an empty /tmp and an empty /dev/shm. It does not see the course folder (solutions/, tests/,
.git), the gradebook, other submissions or anybody's home. The network namespace has only a
loopback that is down: no network. Usage (normally built by autograder.grading.sandbox):

    unshare --mount --net --pid --fork --kill-child python -m autograder.grading.jail \
        --workdir DIR --ro PATH ... --uid N --gid N --mem BYTES --cpu SECONDS --fsize BYTES \
        --work DIR/work --disk BYTES -- CMD...

DIR (the run folder: the connection file and the kernel's sockets) is bound from the host, so the
grader sees the sockets the kernel creates. The submission's folder `--work`, its working
directory, is an empty tmpfs of `--disk` bytes mounted over DIR/work inside the jail only: what
the submission writes there never reaches the host's disk, the tmpfs holds at most `--disk` bytes
of memory (and few inodes), and it is gone with the namespace when the kernel dies. /tmp and
/dev/shm are tmpfs too, with their own sizes.
"""

import argparse
import ctypes
import os
import resource
import signal
import subprocess
import sys
import tempfile

SYSTEM = ["/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"]


def _mount(*args):
    subprocess.run(["mount", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _bind(src, root, writable=False):
    dest = root + src
    if os.path.islink(src):  # merged-/usr systems: /bin -> usr/bin
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.symlink(os.readlink(src), dest)
        return
    if not os.path.exists(src):
        return
    if os.path.isdir(src):
        os.makedirs(dest, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        open(dest, "a").close()
    _mount("--rbind", src, dest)
    if not writable:
        _mount("-o", "remount,bind,ro", dest)


INODES = 65536   # files per writable tmpfs: an inode costs kernel memory that `size` does not count


def build_root(workdir, readonly, work=None, disk=None, uid=0, gid=0):
    _mount("--make-rprivate", "/")
    root = tempfile.mkdtemp(prefix="archlab-jail-")
    _mount("-t", "tmpfs", "-o", "mode=0755,size=64m", "tmpfs", root)
    # the private /tmp first: the course itself (a CI clone, say) may live under /tmp, and its
    # read-only binds below must land inside this tmpfs, not be hidden by it
    os.makedirs(root + "/tmp")
    _mount("-t", "tmpfs", "-o", f"mode=1777,size=256m,nr_inodes={INODES}", "tmpfs", root + "/tmp")
    for path in SYSTEM + sorted(set(readonly)):
        _bind(path, root)
    for dev in ("null", "zero", "random", "urandom", "full"):
        _bind(f"/dev/{dev}", root, writable=True)
    # a private /dev/shm: POSIX semaphores live there (numba's thread pool takes a multiprocessing
    # lock when it starts, and warns on stderr without one, which would fail a test cell)
    os.makedirs(root + "/dev/shm")
    _mount("-t", "tmpfs", "-o", f"mode=1777,size=64m,nr_inodes={INODES},nosuid,nodev", "tmpfs", root + "/dev/shm")
    os.makedirs(root + "/proc", exist_ok=True)
    _mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", root + "/proc")
    _bind(workdir, root, writable=True)
    if work is not None:
        _mount("-t", "tmpfs", "-o", f"mode=0700,uid={uid},gid={gid},size={disk},nr_inodes={INODES},nosuid,nodev",
               "tmpfs", root + work)
    return root


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", required=True)
    p.add_argument("--ro", action="append", default=[])
    p.add_argument("--uid", type=int, required=True)
    p.add_argument("--gid", type=int, required=True)
    p.add_argument("--mem", type=int, required=True)
    p.add_argument("--cpu", type=int, required=True)
    p.add_argument("--fsize", type=int, required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--disk", type=int, required=True)
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    root = build_root(a.workdir, a.ro, a.work, a.disk, a.uid, a.gid)
    os.chroot(root)
    os.chdir(a.work)
    resource.setrlimit(resource.RLIMIT_AS, (a.mem, a.mem))
    resource.setrlimit(resource.RLIMIT_CPU, (a.cpu, a.cpu + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (a.fsize, a.fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setgroups([])
    os.setgid(a.gid)
    os.setuid(a.uid)
    die_with_parent()   # changing uid cleared unshare's --kill-child: set it again
    os.execv(cmd[0], cmd)


PR_SET_PDEATHSIG = 1


def die_with_parent(signo=signal.SIGKILL):
    """Have the kernel (this process, after exec) killed when `unshare` above it dies: then a
    grader that dies takes its kernel with it (sandbox.py starts unshare under setpriv
    --pdeathsig). The kernel is the namespace's init, so everything it started dies too."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signo), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


if __name__ == "__main__":
    sys.exit(main())
