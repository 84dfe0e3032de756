"""A thin layer over nbgrader's Python API: one workspace, one configured API object.

A workspace is a folder of its own (gradebook.db, submitted/, autograded/, feedback/), so
grading never writes into the repository; the source folder is always solutions/. A workspace
that holds an nbgrader_config.py (a hub's course folder, autograder.classroom.hub) adds its settings: the
gradebook URL (SQLite or PostgreSQL), the exchange, the late-submission policy.
"""

import os
import sys
from pathlib import Path

from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config.loader import PyFileConfigLoader

from autograder import contract, paths


def config(workspace, **coursedir):
    _tools_on_path()
    cfg = PyFileConfigLoader(paths.CONFIG.name, str(paths.CONFIG.parent)).load_config()
    ws = Path(workspace).resolve()
    cfg.CourseDirectory.db_url = f"sqlite:///{ws / 'gradebook.db'}"
    cfg.Exchange.root = str(ws / "exchange")   # not /usr/local/share: nothing outside the workspace
    local = ws / "nbgrader_config.py"
    if local.exists():   # a hub's course folder: its gradebook URL, exchange and late policy
        cfg.merge(PyFileConfigLoader(local.name, str(ws)).load_config())
    cfg.CourseDirectory.root = str(ws)
    cfg.CourseDirectory.source_directory = str(paths.SOLUTIONS)
    cfg.CourseDirectory.release_directory = str(ws / "release")
    for key, value in coursedir.items():
        setattr(cfg.CourseDirectory, key, value)
    return cfg


def _tools_on_path():
    """nbgrader runs `alembic` (the gradebook's migrations) as a command, whenever a Gradebook is
    opened on a new database: it must find this environment's, even when Python was started by
    its full path (make, cron) with the environment's bin/ not on PATH."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def api(workspace, **coursedir):
    contract.apply_kernel_env()     # kernels started by nbgrader inherit os.environ
    Path(workspace).mkdir(parents=True, exist_ok=True)
    cfg = config(workspace, **coursedir)
    return NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
