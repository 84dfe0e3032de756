"""Hostile submissions of notebook 01: each one answers wrongly and then tries to score anyway,
to read what it must not, or to take the grader down. Built from the student release.

ATTACKS[name] = (answer-cell code appended to the first exercise's wrong answer, expectation)
expectation: "failed" (the row must say failed) or "flagged" (graded, with flags).
"""


import nbtools
from autograder import contract

NB = "01_self_attention"
FIRST = "scaled_dot_product_attention"

ATTACKS = {
    "input_transformer": ('''
_ip = get_ipython()
def _neuter(lines):
    return ["pass\\n"] if any("assert" in l for l in lines) else lines
_ip.input_transformers_cleanup.append(_neuter)
''', "flagged"),
    "ast_transformer": ('''
import ast as _ast
class _NoAsserts(_ast.NodeTransformer):
    def visit_Assert(self, node):
        return _ast.Pass()
    def visit_Call(self, node):
        return _ast.Constant(None) if getattr(node.func, "id", "").startswith("assert") else node
get_ipython().ast_transformers.append(_NoAsserts())
''', "flagged"),
    "patch_comparisons": ('''
import numpy as np
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
np.allclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
torch.Tensor.__eq__ = lambda self, other: torch.ones((), dtype=torch.bool)
''', "flagged"),
    "patch_archlab_checks": ('''
import archlab.checks
archlab.checks.assert_close = lambda *a, **k: None
archlab.checks.assert_shape = lambda *a, **k: None
assert_close = lambda *a, **k: None
assert_shape = lambda *a, **k: None
import builtins
builtins.AssertionError = type("Quiet", (Exception,), {})
''', "flagged"),
    "read_secrets": ('''
import glob, os
_found = []
for _p in ["../solutions/01_self_attention/01_self_attention.ipynb",
           "../../solutions/01_self_attention/01_self_attention.ipynb",
           "{root}/solutions/01_self_attention/01_self_attention.ipynb",
           "{root}/solutions/01_self_attention/01_self_attention.py",
           "{ws}/gradebook.db", "{ws}/autograded", "{ws}/submitted"]:
    try:
        with open(_p, "rb") as _f:
            _found.append(_f.read(200))
    except OSError:
        pass
    try:
        _found += os.listdir(_p)
    except OSError:
        pass
for _depth in range(1, 6):
    _found += glob.glob("/*" * _depth + "/solutions") + glob.glob("/*" * _depth + "/gradebook.db")
print("SECRET-LEAK", _found) if _found else print("nothing readable")
''', "flagged"),
    "write_outside": ('''
for _p in ["{root}/PWNED-{name}", "../PWNED-{name}", "/tmp/../PWNED-{name}", "{ws}/PWNED-{name}"]:
    try:
        open(_p, "w").write("x")
    except OSError:
        pass
''', "flagged"),
    "uninterruptible_loop": ('''
while True:
    try:
        while True:
            pass
    except KeyboardInterrupt:
        pass
''', "failed"),
    "memory_bomb": ('''
_hog = bytearray(64 * 2**30)
''', "failed"),
    "huge_output": ('''
for _ in range(40):
    print("x" * 100_000)
''', "flagged"),
    "os_exit": ('''
import os
os._exit(0)
''', "failed"),
}


def _wrong_answers():
    wrong = nbtools.wrong_answers(NB)
    return {gid: list(labels.values())[0].code for gid, labels in wrong.items()}


def build(root, ws):
    """{student: notebook or raw text} for every hostile submission."""
    rel = nbtools.release_nb(NB)
    subs = {}
    for name, (code, _) in ATTACKS.items():
        answers = _wrong_answers()
        answers[FIRST] += code.replace("{root}", str(root)).replace("{ws}", str(ws)).replace("{name}", name)
        subs[f"h_{name}"] = nbtools.submission(rel, answers)
    subs["h_invalid_json"] = '{"cells": [ {"cell_type": "code", "source": '
    # a test cell deleted, with a wrong answer above it
    nb = nbtools.submission(rel, _wrong_answers())
    nb.cells = [c for c in nb.cells if contract.grade_id(c) != "test_causal_mask"]
    subs["h_deleted_test_cell"] = nb
    # metadata edited: the test cell no longer graded, the answer cell made a 100-point test
    nb = nbtools.submission(rel, _wrong_answers())
    nbtools.cell(nb, "test_causal_mask").metadata["nbgrader"]["grade"] = False
    nbtools.cell(nb, "test_kv_cache_bytes").metadata["nbgrader"]["points"] = 0
    m = nbtools.cell(nb, "causal_mask").metadata["nbgrader"]
    m.update(grade=True, points=100)
    subs["h_edited_metadata"] = nb
    # a test cell edited to assert nothing
    nb = nbtools.submission(rel, _wrong_answers())
    nbtools.cell(nb, "test_fit_scaling_exponent").source = "pass\n"
    subs["h_edited_test_cell"] = nb
    return subs


EXPECT = {f"h_{k}": v for k, (_, v) in ATTACKS.items()}
EXPECT.update(h_invalid_json="failed", h_deleted_test_cell="flagged", h_edited_metadata="flagged",
              h_edited_test_cell="flagged")


# Faults a submission causes on the grader's machine rather than in its scores (issue 24), graded
# in a batch of their own beside an honest submission (test_security.py: test_faults_*).
FAULTS = {
    # 4 GiB into its own folder, as 20 files of 200 MiB (each under the 256 MiB file-size limit, so
    # only the folder's disk limit can stop it), the error caught: only the grader's look at the
    # folder can tell
    "disk_bomb": ('''
_written = 0
try:
    for _i in range(20):
        with open(f"bomb-{_i}.bin", "wb") as _f:
            for _ in range(200):
                _f.write(b"x" * 2**20)
                _written += 2**20
except OSError as _e:
    print(f"DISK-BOMB stopped after {_written // 2**20} MiB: {_e}")
else:
    print(f"DISK-BOMB wrote all {_written // 2**20} MiB")
''', "failed"),
    # a trace function that stalls the kernel whenever it evaluates user_expressions (only the
    # grader's guard sends any): the kernel stops answering the grader
    "trace_function": ('''
import sys, time
def _stall(frame, event, arg):
    if event == "call" and frame.f_code.co_name == "user_expressions" and frame.f_locals.get("expressions"):
        time.sleep(3600)
sys.settrace(_stall)
''', "failed"),
}


def build_faults():
    """{student: notebook} for every fault."""
    subs = {}
    for name, (code, _) in FAULTS.items():
        answers = _wrong_answers()
        answers[FIRST] += code
        subs[f"h_{name}"] = nbtools.submission(nbtools.release_nb(NB), answers)
    return subs
