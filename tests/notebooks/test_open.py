"""Student notebooks open cleanly: valid nbformat, no stored outputs, and a kernel name that this
environment's Jupyter has, so JupyterLab starts it without asking (no "Select Kernel" dialog).

The first cell's "How to start / How to check your work" text is checked by test_release.py.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.paths import NOTEBOOKS, present_assignments

IDS = present_assignments()


@pytest.fixture(scope="module")
def installed_kernels():
    """`jupyter kernelspec list --json` of this environment (the same `jupyter` `make lab` runs)."""
    jupyter = Path(sys.executable).parent / "jupyter"
    cmd = [str(jupyter)] if jupyter.exists() else [sys.executable, "-m", "jupyter"]
    out = subprocess.run(cmd + ["kernelspec", "list", "--json"], capture_output=True, text=True,
                         env={**os.environ, "JUPYTER_PLATFORM_DIRS": "1"}, timeout=120, check=True)
    return json.loads(out.stdout)["kernelspecs"]


@pytest.mark.parametrize("assignment", IDS)
def test_release_opens_cleanly(assignment, installed_kernels):
    path = NOTEBOOKS / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    stored = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert stored == [], f"{path.name}: cells {stored} carry outputs or execution counts"
    name = nb.metadata.get("kernelspec", {}).get("name")
    assert name in installed_kernels, (
        f"{path.name} asks for kernel {name!r}; installed: {sorted(installed_kernels)}")
    spec = installed_kernels[name]["spec"]
    assert spec["language"] == nb.metadata.kernelspec.get("language", "python") == "python"
    # the kernel is this environment's Python (jupyter_client maps "python" to sys.executable)
    argv0 = spec["argv"][0]
    assert argv0 in ("python", "python3", sys.executable) or \
        Path(argv0).resolve() == Path(sys.executable).resolve(), spec["argv"]
