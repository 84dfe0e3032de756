"""The static scan (autograder/grading/scan.py) follows names that are spelled indirectly: aliases,
dynamic imports and attribute lookups with names built from constants, code run from strings;
a name it cannot fold is flagged as computed. Honest course code raises no flag."""

import pytest

import nbtools
from autograder import paths
from autograder.grading import scan, submission

HIDDEN = {
    # the example: the garbage collector imported and read by computed names
    "issue": ('g = __import__("g" + "c")\nrefs = getattr(g, "get_" + "referrers")(obj)\n',
              ["imports gc", "get_referrers"]),
    "importlib": ('import importlib\nm = importlib.import_module("".join(["g", "c"]))\n', ["imports gc"]),
    "chr": ("m = __import__(chr(103) + chr(99))\n", ["imports gc"]),
    "reversed": ('m = __import__("cg"[::-1])\n', ["imports gc"]),
    "fstring_and_dict": ('a = "get"\nb = f"{a}_referrers"\nimport gc as q\nq.__dict__[b]\n',
                         ["imports gc", "get_referrers"]),
    "vars": ('import gc\nf = vars(gc)["get_" + "objects"]\n', ["get_objects"]),
    "alias": ("import os as o\no._exit(0)\n", ["_exit"]),
    "module_attr_by_name": ('import os\ngetattr(os, "sys" + "tem")("ls")\n', ["os.system"]),
    "from_import": ("from inspect import stack as s\n", ["imports inspect", "inspect.stack"]),
    "frames": ("import sys as s\nf = s._getframe(1).f_back\n", ["_getframe", "f_back"]),
    "subclasses": ("x = ().__class__.__base__.__subclasses__()\n", ["__subclasses__"]),
    "exec_constant": ('exec("import g" + "c")\n', ["imports gc"]),
    "computed_import": ('import base64\nm = __import__(base64.b64decode("Z2M=").decode())\n',
                        ["imports a module by a computed name"]),
    "computed_attribute": ("name = open('n').read()\nf = getattr(torch, name)\n",
                           ["looks up an attribute by a computed name"]),
    "computed_code": ("exec(open('payload').read())\n", ["runs code built at run time"]),
    "shell": ("!cat /etc/passwd\n", ["runs a shell command"]),
    "shell_magic": ("%%bash\nls /\n", ["runs a shell command"]),
}

HONEST = [
    "import torch\nx = torch.stack([a, b])\nfor m in net.modules():\n    pass\n",
    'import json\nd = json.loads("{}")\nn = getattr(cfg, "num_key_value_heads", None)\n',
    "%timeit f(x)\n%matplotlib inline\n",
    "import os\nprint(os.path.join('a', 'b'), os.environ.get('X'))\n",
    "def f(x):\n    return x.sum(dim=-1).mean()\n",
]


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_indirect_spellings_are_flagged(name):
    source, expected = HIDDEN[name]
    flags = scan.scan_source(source, "cell 3")
    for what in expected:
        assert any(what in f for f in flags), f"{name}: {what!r} not in {flags}"
    assert all("cell 3 line" in f for f in flags)


@pytest.mark.parametrize("source", HONEST)
def test_honest_code_is_not_flagged(source):
    assert scan.scan_source(source, "cell") == []


@pytest.mark.parametrize("assignment", paths.present_assignments())
def test_course_answers_raise_no_flag(assignment):
    """The solution's answers and every wrong answer kept for the tests: no flag."""
    rel = nbtools.release_nb(assignment)
    wrong = nbtools.wrong_answers(assignment)
    depth = max(len(labels) for labels in wrong.values())
    batches = [nbtools.solution_answers(assignment)] + [
        {gid: list(labels.values())[k].code for gid, labels in wrong.items() if k < len(labels)} for k in range(depth)]
    for answers in batches:
        nb = nbtools.submission(rel, answers)
        prepared = submission.prepare(nb_bytes(nb), assignment)
        assert prepared.flags == [], prepared.flags


def nb_bytes(nb):
    import nbformat
    return nbformat.writes(nb).encode()
