"""The set-up is what the README promises: the same pins everywhere, a CPU torch in CI."""

import os
import re
import tomllib
from importlib import metadata

import pytest

from autograder.paths import ROOT


def _pins(lines):
    out = {}
    for line in lines:
        m = re.fullmatch(r"\s*-?\s*([A-Za-z0-9_.\-\[\]]+)\s*==\s*([^\s#]+)\s*(#.*)?", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_environment_yml_pins_equal_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    yml = (ROOT / "environment.yml").read_text()
    pip_section = yml.split("- pip:", 1)[1].splitlines()
    assert _pins(pip_section) == wanted
    assert re.search(r"^\s*- python=3\.11\s*$", yml, re.M)
    assert project["requires-python"].startswith(">=3.11")


def test_gpu_packages_only_in_the_gpu_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    cpu = " ".join(project["dependencies"] + project["optional-dependencies"]["dev"])
    assert "mamba-ssm" not in cpu and "causal-conv1d" not in cpu
    assert any(d.startswith("mamba-ssm") for d in project["optional-dependencies"]["gpu"])


def test_installed_versions_match_the_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for name, version in _pins(project["dependencies"]).items():
        installed = metadata.version(name)
        assert installed.split("+")[0] == version, f"{name}: pinned {version}, installed {installed}"


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI must never pull a CUDA build of torch")
def test_ci_has_the_cpu_build_of_torch():
    import torch
    assert torch.version.cuda is None, f"CI installed a CUDA build: {torch.__version__}"
    assert not [d.metadata["Name"] for d in metadata.distributions()
                if (d.metadata["Name"] or "").startswith("nvidia-")]
