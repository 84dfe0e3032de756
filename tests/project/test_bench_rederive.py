"""bench/run.py --rederive: the committed results get today's verdicts and sizes without new measurements."""

import json
import os
import shutil
import subprocess
import sys

from archlab import verdicts
from autograder.paths import ROOT


def test_rederive_keeps_the_measurements_and_recomputes_the_rest(tmp_path):
    src = ROOT / "bench" / "results" / "vm.json"
    path = tmp_path / "vm.json"
    shutil.copy(src, path)
    before = json.loads(path.read_text())
    proc = subprocess.run([sys.executable, "bench/run.py", "--rederive", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = json.loads(path.read_text())
    for fam, row in before["models"].items():
        for key in ("prefill_s", "decode_s", "state_bytes"):
            assert after["models"][fam][key] == row[key], "measurements are never rewritten"
        assert 0 < after["models"][fam]["active_params"] <= after["models"][fam]["params"]
    jamba = after["models"]["jamba"]
    assert jamba["active_params"] < jamba["params"], "a mixture of experts reads top-k of its experts"
    assert all(verdicts.verdict_kind(v) in verdicts.VERDICTS for v in after["verdicts"].values())
    assert after["command"] == before["command"] and "bench/run.py --rederive" in after["rederived"]["command"]
    md = path.with_suffix(".md").read_text()
    assert verdicts.VERDICT_RULE in md and f"{jamba['active_params']:,}" in md
    assert str(ROOT) not in md and str(ROOT) not in path.read_text()
