"""Tests for archlab.device: choosing a device and describing the machine."""

import json
import os

import pytest
import torch

from archlab import device as dev


def test_cpu_is_accepted_and_announced(capsys):
    chosen = dev.pick_device("cpu")
    assert chosen == torch.device("cpu")
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "pick_device should print exactly one line"
    assert "archlab: using cpu" in out


def test_verbose_false_prints_nothing(capsys):
    dev.pick_device("cpu", verbose=False)
    assert capsys.readouterr().out == ""


def test_auto_without_cuda_picks_cpu_and_says_why(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dev.pick_device("auto") == torch.device("cpu")
    assert "no CUDA device found" in capsys.readouterr().out


def test_auto_with_cuda_picks_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.pick_device("auto", verbose=False) == torch.device("cuda")


def test_auto_matches_this_machine():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert dev.pick_device("auto", verbose=False).type == expected


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_gpu_explains_what_to_do(monkeypatch, name):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError) as info:
        dev.pick_device(name)
    message = str(info.value)
    assert name in message
    assert '"auto"' in message and '"cpu"' in message


@pytest.mark.parametrize("name", ["gpu", "cuda0", "tpu", ""])
def test_unknown_device_lists_accepted_values(name):
    with pytest.raises(ValueError) as info:
        dev.pick_device(name)
    message = str(info.value)
    for accepted in ("auto", "cpu", "cuda"):
        assert accepted in message


def test_synchronize_only_touches_cuda(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: calls.append(d))
    dev.synchronize(torch.device("cpu"))
    dev.synchronize("cpu")
    dev.synchronize(None)
    assert calls == []
    dev.synchronize("cuda:0")
    assert calls == [torch.device("cuda:0")]


def test_describe_machine_is_json_and_truthful():
    info = dev.describe_machine()
    roundtrip = json.loads(json.dumps(info))
    assert roundtrip == info
    assert info["logical_cores"] == os.cpu_count()
    assert info["torch_threads"] == torch.get_num_threads()
    assert info["torch"] == torch.__version__
    assert isinstance(info["cpu_model"], str) and info["cpu_model"]
    assert info["python"].count(".") == 2
    assert info["ram_bytes"] is None or info["ram_bytes"] > 0
    assert info["cuda_available"] == torch.cuda.is_available()
    assert len(info["cuda_devices"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_cpu_model_comes_from_proc_cpuinfo_when_present():
    if not os.path.exists("/proc/cpuinfo"):
        pytest.skip("no /proc/cpuinfo on this system")
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.lower().startswith("model name")]
    if not names:
        pytest.skip("/proc/cpuinfo has no 'model name' line here")
    assert dev.describe_machine()["cpu_model"] == names[0]


def test_recorded_command_is_relative_to_the_checkout(tmp_path, monkeypatch):
    """Result files record the command that ran, with no absolute checkout path (issue 13)."""
    script = tmp_path / "bench" / "run.py"
    script.parent.mkdir()
    script.write_text("")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    line = dev.recorded_command([str(script), "--out", str(tmp_path / "bench" / "results"), "--quick"],
                                root=tmp_path)
    assert str(tmp_path) not in line
    assert line.endswith("bench/run.py --out bench/results --quick")
    assert line.startswith("OMP_WAIT_POLICY=PASSIVE ")
    outside = dev.recorded_command(["bench/run.py", "--out", "/elsewhere/results"], root=tmp_path)
    assert outside.endswith("bench/run.py --out /elsewhere/results"), "a path outside the checkout stays as given"


def test_machine_slug_is_the_short_host_name(monkeypatch):
    monkeypatch.setattr(dev.platform, "node", lambda: "gpu-box.example.org")
    assert dev.machine_slug() == "gpu-box"
    monkeypatch.setattr(dev.platform, "node", lambda: "")
    assert dev.machine_slug() == "machine"
