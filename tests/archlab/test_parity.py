"""Parity records and scripts/parity.py: two CPU runs agree, an altered record fails (issue 18).

The CUDA side needs a GPU (scripts/gpu_check.sh); here the same notebook runs twice on the CPU,
which must agree, and a copy of one record with one value moved outside its tolerance must not.
The first run is the session's (conftest.solution_run, which test_execute checks ran on the CPU).
"""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest
import torch

from archlab import parity
from autograder.course import execute
from autograder.paths import ROOT

NB = "01_self_attention"   # the quickest notebook


def record(**values):
    return {"notebook": "nb", "device": "cpu", "values": {k: {"kind": kind, "value": v}
                                                         for k, (kind, v) in values.items()}}


@pytest.mark.parametrize("kind, a, b, ok", [
    ("exact", [1, 2, 3], [1, 2, 3], True),
    ("exact", [1, 2, 3], [1, 2, 4], False),
    ("exact", {"gpt2": "inf"}, {"gpt2": "inf"}, True),
    ("close", [1.0, 2.0], [1.0 + 5e-3, 2.0], True),       # 5e-3 <= 1e-4 + 1e-2 * 1
    ("close", [1.0, 2.0], [1.0 + 2e-2, 2.0], False),      # 2e-2 >  1e-4 + 1e-2 * 1.02
    ("close", [[0.0]], [[5e-5]], True),                   # near zero the absolute part decides
    ("close", [1.0, 2.0], [1.0], False),                  # a shape change is a failure, not a crash
    ("loose", 2.0, 2.4, True),                            # 0.4 <= 0.05 + 0.25 * 2.4
    ("loose", 2.0, 3.0, False),
    ("close", True, False, False),
])
def test_tolerances_by_kind(kind, a, b, ok):
    assert parity.compare_value(kind, a, b)[0] is ok


def test_a_value_recorded_by_one_run_only_or_with_another_kind_fails():
    rows = parity.compare_records(record(x=("exact", 1), y=("close", 1.0)), record(x=("close", 1), z=("exact", 2)))
    by_name = {r["name"]: r for r in rows}
    assert not by_name["x"]["ok"] and "different kinds" in by_name["x"]["where"]
    assert not by_name["y"]["ok"] and not by_name["z"]["ok"]
    with pytest.raises(ValueError, match="different notebooks"):
        parity.compare_records(record(), {**record(), "notebook": "other"})


def test_save_record_writes_only_where_the_variable_points(tmp_path, monkeypatch, capsys):
    ns = {"SEED": 3, "QUICK": True, "loss": torch.tensor(0.25), "counts": [1, 2], "MEAS": {"models": {"a": [4]}},
          "inf": math.inf}
    monkeypatch.delenv(parity.ENV, raising=False)
    assert parity.save_record(ns, "cpu", exact=["counts"]) is None
    target = tmp_path / "nb.parity.json"
    monkeypatch.setenv(parity.ENV, str(target))
    assert parity.save_record(ns, torch.device("cpu"), exact=["counts", "MEAS.models.a", "inf"],
                              loose=["loss"]) == target
    rec = json.loads(target.read_text())
    assert rec["notebook"] == "nb" and rec["seed"] == 3 and rec["device"] == "cpu"
    assert rec["values"]["loss"] == {"kind": "loose", "value": 0.25}
    assert rec["values"]["MEAS.models.a"]["value"] == [4] and rec["values"]["inf"]["value"] == "inf"
    assert "Mamba selective scan" in rec["fast_paths"] and rec["machine"]["logical_cores"]
    with pytest.raises(KeyError, match="no variable 'lost'"):
        parity.save_record(ns, "cpu", exact=["lost"])
    with pytest.raises(KeyError, match="MEAS.models has no key 'b'"):
        parity.save_record(ns, "cpu", exact=["MEAS.models.b"])
    with pytest.raises(ValueError, match="record a summary"):
        parity.save_record({"big": torch.zeros(parity.MAX_ELEMENTS + 1)}, "cpu", close=["big"])
    with pytest.raises(TypeError, match="'model' is a Linear"):
        parity.save_record({"model": torch.nn.Linear(1, 1)}, "cpu", exact=["model"])


def _parity(run, reference, out):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "parity.py"), str(run), str(reference),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def two_cpu_runs(solution_run, tmp_path_factory):
    """The same notebook executed twice on the CPU, each run in its own folder: the session's run
    (shared with test_execute and test_model_solutions) and one more here, with the same parameters."""
    run_a, _ = solution_run(NB)
    run_b = tmp_path_factory.mktemp("run_b")
    execute.execute(NB, out_dir=run_b, QUICK=True)
    return [run_a, run_b]


@pytest.mark.notebooks
@pytest.mark.slow
def test_two_cpu_runs_agree_and_the_report_says_what_ran(two_cpu_runs, tmp_path):
    a, b = two_cpu_runs
    proc = _parity(a, b, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "parity: PASS" in proc.stdout
    report = json.loads((tmp_path / "parity.json").read_text())
    entry = report["notebooks"][NB]
    assert entry["ok"] and entry["rows"] and all(s > 0 for s in entry["seconds"])
    assert str(ROOT) not in report["command"]
    md = (tmp_path / "parity.md").read_text()
    assert "Result: **PASS**" in md and "Mamba selective scan" in md and "attention" in md
    assert "torch " in md and "cores" in md, "the report names the machines"


@pytest.mark.notebooks
@pytest.mark.slow
def test_an_altered_record_fails(two_cpu_runs, tmp_path):
    a, b = two_cpu_runs
    altered = tmp_path / "altered"
    shutil.copytree(a, altered)
    path = altered / f"{NB}.parity.json"
    rec = json.loads(path.read_text())
    name = next(n for n, v in rec["values"].items() if v["kind"] == "exact")
    value = rec["values"][name]["value"]
    rec["values"][name]["value"] = [x + 1 for x in value] if isinstance(value, list) else value + 1
    path.write_text(json.dumps(rec))
    proc = _parity(altered, b, tmp_path / "report")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    md = (tmp_path / "report" / "parity.md").read_text()
    assert "Result: **FAIL**" in md and f"`{name}` (exact)" in md


@pytest.mark.notebooks
@pytest.mark.slow
def test_a_missing_record_fails(two_cpu_runs, tmp_path):
    a, b = two_cpu_runs
    missing = tmp_path / "missing"
    shutil.copytree(a, missing)
    (missing / f"{NB}.parity.json").unlink()
    proc = _parity(missing, b, tmp_path / "report")
    assert proc.returncode == 1
    assert "no parity record in the run" in (tmp_path / "report" / "parity.md").read_text()


@pytest.mark.parametrize("record", [True, False])
def test_execute_asks_for_a_record_only_when_told(record, tmp_path, monkeypatch):
    """A prepared submission under NBGRADER_EXECUTION skips what the record names (the grading
    benchmark's plain runs): those runs pass record=False and the kernel is not asked for one."""
    seen = {}

    def fake(src, out, **kw):
        seen["env"] = os.environ.get(parity.ENV)
    monkeypatch.setattr(execute.papermill, "execute_notebook", fake)
    execute.execute(NB, out_dir=tmp_path, record=record)
    assert (seen["env"] is not None) == record
    assert parity.ENV not in os.environ
