"""Parity records: a notebook's key numbers, written beside its executed copy, to compare two runs.

The last cell of every notebook calls :func:`save_record` with the names of numbers the
notebook computed (test results, losses after training, parameter counts, cache bytes: never
timings). It writes them only where the environment variable :data:`ENV` points, which
``python -m autograder execute`` sets to ``<out>/<id>.parity.json``; a student's run and a
graded run write nothing. ``scripts/parity.py`` then compares a CPU run with a CUDA run
(:func:`compare_records`) within the tolerances below and writes one report.

Glossary
--------
record
    ``{"notebook", "device", "seed", "quick", "values": {name: {"kind", "value"}}, "fast_paths", "machine"}``.
kind
    How a value may differ between two runs (:data:`TOLERANCES`):

    ``exact``  counts, bytes, shapes, booleans, text: equal, or the runs disagree;
    ``close``  float32 results of the same computation on the same inputs, summed in another
               order on another device (cuDNN may use TF32 for convolutions):
               ``|a - b| <= 1e-4 + 1e-2 · |b|`` for every element;
    ``loose``  results that also depend on random draws made on the device (CUDA's random
               stream differs from the CPU's for the same seed), such as a loss after training:
               ``|a - b| <= 0.05 + 0.25 · |b|``.
"""

import json
import math
import os
from pathlib import Path

ENV = "ARCHLAB_PARITY_RECORD"

# kind -> (absolute tolerance, relative tolerance): |a - b| <= atol + rtol * |b|
TOLERANCES = {"exact": (0.0, 0.0), "close": (1e-4, 1e-2), "loose": (0.05, 0.25)}
MAX_ELEMENTS = 10_000   # a record holds key numbers, not activations


def _plain(value, name):
    """A JSON-ready copy of ``value``: numbers, booleans, text, and lists/dicts of them."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if hasattr(value, "detach") and hasattr(value, "tolist"):        # a torch tensor
        value = value.detach().cpu()
    if hasattr(value, "tolist") and hasattr(value, "size"):          # a tensor or numpy array/scalar
        n = value.numel() if callable(getattr(value, "numel", None)) else value.size
        if n > MAX_ELEMENTS:
            raise ValueError(f"parity record: {name!r} has {n:,} elements; record a summary of it "
                             f"(at most {MAX_ELEMENTS:,} numbers a value)")
        return _plain(value.tolist(), name)
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{name}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "item"):                                        # numpy / torch scalar types
        return _plain(value.item(), name)
    raise TypeError(f"parity record: {name!r} is a {type(value).__name__}; record numbers, booleans, text, "
                    "tensors or lists/dicts of them")


def _lookup(namespace, name):
    """``namespace["a"]["b"]["c"]`` for the name ``"a.b.c"`` (a variable, then keys of dicts)."""
    first, *keys = name.split(".")
    if first not in namespace:
        raise KeyError(f"parity record: the notebook has no variable {first!r} (renamed? update its save_record call)")
    value = namespace[first]
    for i, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise KeyError(f"parity record: {'.'.join([first, *keys[:i]])} has no key {key!r}")
        value = value[key]
    return value


def save_record(namespace, device, *, exact=(), close=(), loose=()):
    """Write the named variables of ``namespace`` to the file :data:`ENV` names; do nothing without it.

    ``exact``, ``close`` and ``loose`` list variable names (``"MEAS.models.gpt2.state_bytes"``
    reads dict keys) by how they may differ between a CPU and a CUDA run (see the module
    docstring). Reaching this call means every test cell above it
    passed (papermill stops at the first error). Returns the path written, or None.
    """
    path = os.environ.get(ENV)
    if not path:
        return None
    from archlab.device import describe_machine
    from archlab.fastpaths import report

    values = {}
    for kind, names in (("exact", exact), ("close", close), ("loose", loose)):
        for name in names:
            values[name] = {"kind": kind, "value": _plain(_lookup(namespace, name), name)}
    path = Path(path)
    record = {"notebook": path.name.split(".")[0], "device": str(device), "seed": namespace.get("SEED"),
              "quick": namespace.get("QUICK"), "values": values, "fast_paths": report(device),
              "machine": describe_machine()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"parity record: {len(values)} values written to {path.name}")
    return path


def _leaves(a, b, where=""):
    """Pairs of leaf values at the same place in two nested lists/dicts; raises on a shape mismatch."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            raise ValueError(f"{where or 'value'}: keys differ ({sorted(set(a) ^ set(b))})")
        for k in a:
            yield from _leaves(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            raise ValueError(f"{where or 'value'}: {len(a)} elements against {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _leaves(x, y, f"{where}[{i}]")
    else:
        yield where, a, b


def compare_value(kind, a, b):
    """``(ok, worst difference, where)`` of two recorded values of one kind (``b`` is the reference)."""
    atol, rtol = TOLERANCES[kind]
    worst, worst_at = 0.0, ""
    try:
        pairs = list(_leaves(a, b))
    except ValueError as e:
        return False, math.inf, str(e)
    for where, x, y in pairs:
        numbers = isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool) \
            and not isinstance(y, bool)
        if kind == "exact" or not numbers:
            if x != y:
                return False, math.inf, f"{where or 'value'}: {x!r} against {y!r}"
            continue
        diff = abs(x - y)
        if diff > atol + rtol * abs(y):
            return False, diff, f"{where or 'value'}: {x!r} against {y!r}"
        if diff >= worst:
            worst, worst_at = diff, where
    return True, worst, worst_at


def compare_records(run, reference):
    """One row per value of two records of the same notebook: ``{"name", "kind", "ok", "diff", "where"}``.

    A value recorded by one run and not the other, or recorded with another kind, fails.
    """
    if run["notebook"] != reference["notebook"]:
        raise ValueError(f"records of different notebooks: {run['notebook']!r} and {reference['notebook']!r}")
    rows = []
    for name in sorted(set(run["values"]) | set(reference["values"])):
        a, b = run["values"].get(name), reference["values"].get(name)
        if a is None or b is None:
            rows.append({"name": name, "kind": (a or b)["kind"], "ok": False, "diff": None,
                         "where": "recorded by one run only"})
        elif a["kind"] != b["kind"]:
            rows.append({"name": name, "kind": f"{a['kind']}/{b['kind']}", "ok": False, "diff": None,
                         "where": "recorded with different kinds"})
        else:
            ok, diff, where = compare_value(a["kind"], a["value"], b["value"])
            rows.append({"name": name, "kind": a["kind"], "ok": ok, "diff": None if math.isinf(diff) else diff,
                         "where": where})
    return rows
