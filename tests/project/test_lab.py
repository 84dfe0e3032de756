"""`make lab` works for every user: as root (containers, cloud VMs, CI) and on a machine without a
display, it starts JupyterLab (adding --allow-root only for root, --no-browser without a display)
and serves the notebooks. The student edition's `make lab` is tested in test_student_edition.py."""

import os

import pytest

import browser_helpers as bh
from autograder import paths


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="this checks the root case (as in CI and containers)")
def test_make_lab_serves_the_notebooks_as_root_without_a_display(tmp_path):
    listing = bh.make_lab_contents(paths.ROOT, log_path=tmp_path / "lab.log")
    names = {item["name"] for item in listing["content"]}
    assert set(paths.present_assignments()) <= names, (names, (tmp_path / "lab.log").read_text()[-2000:])
    log = (tmp_path / "lab.log").read_text()
    assert "--allow-root" in log and "no display here" in log
