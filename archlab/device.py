"""Choosing where tensors live, and describing the machine a result came from.

Every notebook starts with ``DEVICE = "auto"``; its setup cell calls :func:`pick_device` through
:func:`archlab.course.setup`.
The same code then runs on a laptop CPU or on a GPU without edits.

Glossary
--------
device
    Where a tensor's memory lives and where its maths runs: ``cpu`` or
    ``cuda`` (an NVIDIA GPU; ``cuda:0`` is the first one).
asynchronous execution
    CUDA calls *queue* work and return at once. To time GPU code you must
    wait for the queue to drain first: that is what :func:`synchronize` does.
    On the CPU every call is already finished when it returns.
logical cores
    What ``os.cpu_count()`` reports (hyper-threads count twice).
slug
    The machine's short name (its host name up to the first dot): benchmark result files
    are called ``<slug>.json``.
"""

import json
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

ACCEPTED = ("auto", "cpu", "cuda", "cuda:N (e.g. cuda:0)")


def pick_device(device="auto", verbose=True):
    """Return a ``torch.device`` for ``device`` ("auto", "cpu", "cuda", "cuda:0", ...).

    "auto" picks the GPU when PyTorch can see one, otherwise the CPU.
    Prints one line saying which device was chosen and why (unless ``verbose=False``).
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto' or 'cpu'; got {type(device).__name__}")
    name = device.strip().lower()
    has_cuda = torch.cuda.is_available()

    if name == "auto":
        chosen = torch.device("cuda" if has_cuda else "cpu")
        why = "CUDA device found" if has_cuda else "no CUDA device found"
    elif name == "cpu":
        chosen, why = torch.device("cpu"), "asked for cpu"
    elif name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not has_cuda:
            raise RuntimeError(
                f"You asked for device {device!r}, but PyTorch cannot see a CUDA GPU on this machine "
                f"(torch {torch.__version__}, torch.cuda.is_available() is False). "
                'Set DEVICE = "auto" (uses the GPU when there is one) or DEVICE = "cpu".'
            )
        chosen = torch.device(name)
        index = chosen.index if chosen.index is not None else 0
        if index >= torch.cuda.device_count():
            raise RuntimeError(
                f"You asked for {device!r} but only {torch.cuda.device_count()} CUDA device(s) exist "
                f'(cuda:0 .. cuda:{torch.cuda.device_count() - 1}). Use DEVICE = "auto".'
            )
        why = f"asked for {name}"
    else:
        raise ValueError(f"Unknown device {device!r}. Accepted values: {', '.join(ACCEPTED)}.")

    if verbose:
        label = str(chosen)
        if chosen.type == "cuda":
            label += f" ({torch.cuda.get_device_name(chosen)})"
        print(f"archlab: using {label} ({why})")
    return chosen


def synchronize(device):
    """Wait until all queued work on ``device`` has finished (no-op on CPU / None)."""
    if device is None:
        return
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cpu_model():
    """CPU model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _total_ram_bytes():
    """Total physical memory in bytes, or None when it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024  # the file reports kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def machine_slug():
    """This machine's short name, for result file names: the host name up to its first dot."""
    return platform.node().split(".")[0] or "machine"


def recorded_command(argv=None, root=None):
    """The command that is running, as one shell line a reader can rerun from ``root``.

    ``argv`` defaults to ``sys.argv`` and the interpreter is ``sys.executable``; every argument
    that names a path inside ``root`` (default: the current folder) is written relative to it,
    so no result file names the checkout it was made in. Environment variables that change a
    measurement (``OMP_WAIT_POLICY``) are written in front when set.
    """
    root = Path(os.path.abspath(root or os.getcwd()))
    argv = list(sys.argv if argv is None else argv)

    def rel(arg):
        if not arg or not (os.sep in arg or os.path.exists(arg)):
            return arg
        path = Path(os.path.abspath(arg))   # not resolve(): .venv/bin/python is a link out of the checkout
        try:
            return str(path.relative_to(root)) or "."
        except ValueError:
            return arg

    exe = rel(sys.executable)
    if exe == sys.executable:  # an interpreter outside the checkout: its name is enough
        exe = "python"
    env = [f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"] if os.environ.get("OMP_WAIT_POLICY") else []
    return shlex.join(env + [exe] + [rel(a) for a in argv])


def describe_machine():
    """A JSON-serialisable dict describing this machine, to store next to measurements."""
    import transformers

    info = {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
        "ram_bytes": _total_ram_bytes(),
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [],
    }
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            info["cuda_devices"].append({"name": props.name, "memory_bytes": int(props.total_memory),
                                         "capability": f"{props.major}.{props.minor}"})
        info["cuda_runtime"] = torch.version.cuda
    json.dumps(info)  # fail here, not later, if something is not serialisable
    return info
