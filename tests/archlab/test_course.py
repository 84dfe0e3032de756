"""archlab.course.setup, the one call of every notebook's setup cell, and what the grader keeps of it.

setup(DEVICE, QUICK, SEED) picks the device (one printed line), forces QUICK while nbgrader
grades, prints the fast paths and seeds torch. The grader records the names a locked cell binds
(autograder.submission.defined_names) and puts them back before every test cell, so the tuple
``device, QUICK, GRADING = setup(...)`` must count as binding all three.
"""

import pytest
import torch

import nbtools
from archlab import course, fastpaths
from autograder import contract
from autograder.grading.submission import defined_names
from autograder.paths import present_assignments


@pytest.mark.parametrize("env, quick, expected", [(None, False, (False, False)), (None, True, (True, False)),
                                                  ("autograde", False, (True, True)), ("validate", True, (True, True))])
def test_quick_is_forced_while_grading(monkeypatch, capsys, env, quick, expected):
    if env is None:
        monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    else:
        monkeypatch.setenv("NBGRADER_EXECUTION", env)
    device, got_quick, grading = course.setup("cpu", quick, 0)
    assert device == torch.device("cpu") and (got_quick, grading) == expected


def test_setup_prints_the_device_and_the_fast_paths_and_seeds_torch(capsys):
    course.setup("cpu", True, 123)
    first = torch.rand(3)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("archlab: using cpu"), "pick_device's line comes first"
    assert out[1] == "archlab fast paths on cpu:" and len(out) == 2 + len(fastpaths.report("cpu"))
    torch.manual_seed(123)
    assert torch.equal(first, torch.rand(3)), "setup seeds torch with SEED"


def test_bad_device_is_refused_as_pick_device_refuses_it():
    with pytest.raises(ValueError):
        course.setup("gpu", True, 0)


def test_tuple_targets_count_as_given_names():
    src = "import os\nfrom a import b as c\nx = 1\ny, (z, *w) = f()\nq.attr = 2\nd[0] = 3\ndef g(): pass\n"
    assert defined_names(src) == ["c", "g", "os", "w", "x", "y", "z"]


@pytest.mark.parametrize("assignment", present_assignments())
def test_every_setup_cell_is_the_one_call_and_gives_its_names(assignment):
    cell = nbtools.cell(nbtools.release_nb(assignment), "setup")
    assert contract.is_locked(cell), "the setup cell is locked"
    assert "device, QUICK, GRADING = setup(DEVICE, QUICK, SEED)" in cell.source
    assert {"device", "QUICK", "GRADING", "setup"} <= set(defined_names(cell.source))
    assert "NBGRADER_EXECUTION" not in cell.source and "manual_seed" not in cell.source, "setup does these"
