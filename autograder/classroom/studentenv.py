"""What the hub's students run: the student edition of the course and a Python environment
that every account can read.

Students are Linux accounts, so nothing they run may come from the repository: its `.venv` is
an editable install whose import finder points into the repository (solutions/, tests/,
autograder/), and the repository itself is closed to them (`hub` checks). Instead:

- the **student edition** (notebooks, the answer-free archlab, figures and data) is built into
  `<prefix>/edition` on every start; kernels import `archlab` from there (PYTHONPATH);
- the **environment** is a virtual environment of a system Python (one every account may run,
  not a pyenv build under /root) with the course's pinned packages: the same pins as
  pyproject.toml, which include JupyterLab, nbgrader (the Assignments tab) and
  jupyterhub-singleuser. It holds third-party packages only, so it is cached by the hash of its
  pins (`<envs>/<hash>/`) and shared by hubs and test runs with the same pins: the first build
  takes minutes, later starts reuse it.
"""

import fcntl
import hashlib
import logging
import os
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

from autograder import paths
from autograder.course import bundle
from autograder.errors import CourseError

log = logging.getLogger(__name__)

WHEELS = Path(os.environ.get("WHEELS", "/opt/wheels"))   # the CPU torch of the course's machines (Makefile)
PYTHONS = ("/usr/bin/python3.11", "/usr/local/bin/python3.11", "/usr/bin/python3")


def build_edition(out):
    """The student edition (autograder.course.bundle: no answers, checked) into `out`, replaced; returns `out`."""
    out = bundle.build(Path(out))
    for p in [out, *out.rglob("*")]:          # readable by every account, writable by none
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    return out


def open_to_all(path, execute=False):
    """True if an account that is neither owner nor in the group can reach `path`."""
    path = Path(path).resolve()
    for parent in reversed(path.parents):
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return False
    mode = os.stat(path).st_mode
    need = stat.S_IXOTH if execute or path.is_dir() else stat.S_IROTH
    return bool(mode & need)


def system_python(explicit=None):
    """A Python 3.11 that every account can run (the students' servers are started as them)."""
    candidates = [explicit] if explicit else PYTHONS
    for p in candidates:
        if p and Path(p).exists() and open_to_all(p, execute=True):
            return str(Path(p))
    raise CourseError("no Python 3.11 that every account can run: install Debian's python3 and python3-venv "
                     "(scripts/install_hub.sh does), or pass --python PATH")


def requirements():
    """The pinned packages of pyproject.toml's dependencies (the course's runtime)."""
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    return sorted(project["dependencies"])


def env_key(python):
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True,
                             text=True, check=True).stdout.strip()
    text = "\n".join([python, version, *requirements()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def environment(envs_dir, python=None):
    """The cached environment for these pins (built on first use); returns its folder."""
    python = system_python(python)
    envs_dir = Path(envs_dir)
    envs_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(envs_dir, 0o755)
    env = envs_dir / env_key(python)
    with open(envs_dir / f"{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)        # another hub or test building the same one waits
        if (env / ".complete").exists():
            return env
        shutil.rmtree(env, ignore_errors=True)  # a build that died half-way
        log.info(f"building the students' environment {env} (first time only: a few minutes)")
        try:
            subprocess.run([python, "-m", "venv", str(env)], check=True)
            wheels = ["--find-links", str(WHEELS)] if list(WHEELS.glob("torch-2.13.0*")) else []
            pip = subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "--quiet",
                                  "--disable-pip-version-check", *wheels, *requirements()],
                                 capture_output=True, text=True)
            if pip.returncode:
                raise OSError(f"pip install failed:\n{pip.stdout[-3000:]}{pip.stderr[-3000:]}")
        except (subprocess.CalledProcessError, OSError) as e:
            shutil.rmtree(env, ignore_errors=True)
            raise CourseError(f"could not build the students' environment: {e}") from e
        (env / ".complete").write_text(sys.version)
    return env
