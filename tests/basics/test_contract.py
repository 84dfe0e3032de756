"""The authoring contract is spelled once, in autograder/contract.py, and it says what it means.

A second spelling is searched for in the Python files of autograder/, tests/ (with its folders),
scripts/*.py and bench/*.py, except contract.py and this file. What counts as one:

1. Cell kinds. Reading one of nbgrader's flags of a cell, `.get("grade")`, `.get("solution")`,
   `.get("locked")` or a subscript `["grade"]`... that is not assigned to: every predicate on
   cells (`get("grade") and not get("solution")`, the test cell; the answer, written and given
   cells) is made of such reads. Ask contract.is_test, is_answer, is_written, is_given,
   is_locked, has_solution, points. Writing a flag (`...["grade"] = False`, a hostile
   submission's edit) is not a read.
2. Marker regexes. A string literal that names a marker (BEGIN or END, then SOLUTION or HIDDEN
   within a few characters) and holds regex syntax (`(?`, `[`, a backslash, `.*`, `.+`, `^`,
   `|`, `$`), or any string literal naming SOLUTION or HIDDEN inside a call of `re.*`. A plain
   mention is fine: a message, a docstring, test data such as a misspelt marker or a wrong
   answer's text.
3. The kernel environment. OMP_WAIT_POLICY or TOKENIZERS_PARALLELISM given a value in Python:
   as a dict key (`"OMP_WAIT_POLICY": ...`), a keyword (`OMP_WAIT_POLICY="PASSIVE"`), through
   `setdefault("OMP_WAIT_POLICY", ...)` or `environ["OMP_WAIT_POLICY"] = ...`. Both are set only
   as part of contract.KERNEL_ENV. (HF_HUB_OFFLINE alone is how tests ask archlab for its
   offline behaviour, so it is no sign; `monkeypatch.setenv` is a test's input, not a spelling.)
   The Makefile's scripts/course.mk (shared with the student edition, which has no autograder)
   and scripts/gpu_check.sh export the kernel environment themselves; they are compared with
   KERNEL_ENV instead.

ALLOWED names the places that may keep a spelling for now, and why (an entry whose spelling is
gone is harmless; drop it then). Each rule is shown to fail on a scratch copy of a searched
file with a second spelling planted (test_each_rule_finds_a_planted_spelling), on other forms
(test_other_spellings_are_found), and not on plain mentions (test_plain_mentions_are_not_spellings).

Then: the cell kinds, markers, kernel environment and leak rule do what contract's docstring says.
"""

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from autograder import contract, paths

ROOT = paths.ROOT
SELF = {"autograder/contract.py", "tests/basics/test_contract.py"}
# (rule, file) -> why it may keep its spelling
ALLOWED = {}

FLAG_READ = re.compile(r"""\.get\(\s*["'](grade|solution|locked)["']"""
                       r"""|\[\s*["'](grade|solution|locked)["']\s*\](?!\s*=[^=])""")
MARKER_NAME = re.compile(r"(BEGIN|END).{0,15}(SOLUTION|HIDDEN)")
REGEX_SYNTAX = re.compile(r"\(\?|\[|\\|\.\*|\.\+|\^|\||\$")
ENV_SIGNS = ("OMP_WAIT_POLICY", "TOKENIZERS_PARALLELISM")
ENV_SET = re.compile(r"""["'](?:{k})["']\s*:|\b(?:{k})\s*=\s*["']|setdefault\(\s*["'](?:{k})["']|"""
                     r"""environ\[\s*["'](?:{k})["']\s*\]\s*=[^=]""".format(k="|".join(ENV_SIGNS)))


def python_files(root):
    root = Path(root)
    found = [*(root / "autograder").rglob("*.py"), *(root / "tests").rglob("*.py"),
             *(root / "scripts").glob("*.py"), *(root / "bench").glob("*.py")]
    return sorted(p for p in found if "__pycache__" not in p.parts and p.relative_to(root).as_posix() not in SELF)


def _strings(tree):
    """(line, text) of every string literal (f-strings: their constant parts)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _regex_call_strings(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re":
            for arg in node.args:
                yield from _strings(arg)


def second_spellings(root=ROOT):
    """[(rule, file, line number, what)] of every second spelling under root (rules above)."""
    hits = []
    for path in python_files(root):
        rel = path.relative_to(root).as_posix()
        text = path.read_text(errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            if FLAG_READ.search(line):
                hits.append(("cell kinds", rel, n, line.strip()))
            if ENV_SET.search(line):
                hits.append(("kernel environment", rel, n, line.strip()))
        tree = ast.parse(text, str(path))      # a file that does not parse is not skipped: it fails
        for n, s in _strings(tree):
            if MARKER_NAME.search(s) and REGEX_SYNTAX.search(s):
                hits.append(("marker regex", rel, n, s[:80]))
        for n, s in _regex_call_strings(tree):
            if "SOLUTION" in s or "HIDDEN" in s:
                hits.append(("marker regex", rel, n, s[:80]))
    return sorted(set(hits))


def test_the_contract_is_spelled_once():
    hits = [h for h in second_spellings() if (h[0], h[1]) not in ALLOWED]
    assert not hits, "second spellings of the authoring contract (ask autograder.contract):\n" + \
        "\n".join(f"  {rule}: {f}:{n}: {what}" for rule, f, n, what in hits)


PLANTS = {
    "cell kinds": ('autograder/grading/scan.py',
                   '\n\ndef _is_test(m):\n    return m.get("grade") and not m.get("solution")\n'),
    "marker regex": ('tests/nbtools.py',
                     '\nimport re\nHIDDEN = re.compile(r"^### BEGIN HIDDEN TESTS\\n.*?### END HIDDEN TESTS", re.S)\n'),
    "kernel environment": ('autograder/course/execute.py',
                           '\nENV = {"OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}\n'),
}


@pytest.mark.parametrize("rule", sorted(PLANTS))
def test_each_rule_finds_a_planted_spelling(rule, tmp_path):
    """On a scratch copy of a searched file: clean, then its planted spelling is found."""
    where, code = PLANTS[rule]
    target = tmp_path / where
    target.parent.mkdir(parents=True)
    shutil.copyfile(ROOT / where, target)
    assert second_spellings(tmp_path) == []
    with open(target, "a") as f:
        f.write(code)
    found = second_spellings(tmp_path)
    assert found and {(h[0], h[1]) for h in found} == {(rule, where)}, found


VARIANTS = [
    ("cell kinds", 'ok = m["grade"] and not m["solution"]'),
    ("cell kinds", "given = c.metadata.nbgrader.get('locked')"),
    ("cell kinds", "answers = [c for c in nb.cells if meta(c).get('solution')]"),
    ("marker regex", 'src = re.sub("### END SOLUTION", "", src)'),
    ("marker regex", 'BEGIN = rf"^{indent}### BEGIN SOLUTION\\n"'),
    ("marker regex", 'M = "^[ \\t]*(?:BEGIN|END) SOLUTION"'),
    ("kernel environment", 'env.update(OMP_WAIT_POLICY="PASSIVE")'),
    ("kernel environment", 'os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")'),
    ("kernel environment", 'os.environ["TOKENIZERS_PARALLELISM"] = "false"'),
    ("kernel environment", "ENV = {'TOKENIZERS_PARALLELISM': 'false'}"),
]


@pytest.mark.parametrize("rule,line", VARIANTS)
def test_other_spellings_are_found(rule, line, tmp_path):
    f = tmp_path / "tests" / "x.py"
    f.parent.mkdir(parents=True)
    f.write_text(line + "\n")
    assert [h[0] for h in second_spellings(tmp_path)] == [rule]


def test_plain_mentions_are_not_spellings(tmp_path):
    """Messages, docstrings and test data may name markers and variables."""
    f = tmp_path / "autograder" / "x.py"
    f.parent.mkdir(parents=True)
    f.write_text('"""Between `### BEGIN SOLUTION` and `### END SOLUTION` (the answer)."""\n'
                 'MISSPELT = ["### BEGIN HIDEN TESTS", "## BEGIN HIDDEN TESTS"]\n'
                 'assert "BEGIN HIDDEN TESTS" not in text\n'
                 'line.startswith("OMP_WAIT_POLICY=PASSIVE ")\n'
                 'monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")\n'
                 'print(os.environ.get("OMP_WAIT_POLICY"))\n'
                 'cell.metadata["nbgrader"]["grade"] = False\n'
                 'if meta == other["solution_count"]: pass\n')
    assert second_spellings(tmp_path) == []


def test_contract_imports_nothing_of_the_project_but_errors():
    tree = ast.parse((ROOT / "autograder" / "contract.py").read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert all(not m.startswith("autograder") or m == "autograder.errors" for m in names), names


# ---------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------
def _cell(cell_type, **nbgrader):
    return {"cell_type": cell_type, "source": "", "metadata": {"nbgrader": {"grade_id": "x", **nbgrader}}}


KINDS = {
    "answer": _cell("code", solution=True, grade=False, locked=False),
    "test": _cell("code", solution=False, grade=True, locked=True, points=3),
    "written": _cell("markdown", solution=True, grade=True, locked=False, points=2),
    "given": _cell("code", solution=False, grade=False, locked=True),
}


@pytest.mark.parametrize("as_node", [False, True])
def test_cell_kinds(as_node):
    def make(d):
        return nbformat.from_dict(d) if as_node else d
    for name, d in KINDS.items():
        c = make(d)
        assert contract.kind(c) == name
        assert contract.is_answer(c) == (name == "answer")
        assert contract.is_test(c) == (name == "test")
        assert contract.is_written(c) == (name == "written")
        assert contract.is_given(c) == (name == "given")
        assert contract.is_locked(c) == (name in ("test", "given"))
        assert contract.has_solution(c) == (name in ("answer", "written"))
        assert contract.grade_id(c) == "x"
    assert contract.points(make(KINDS["test"])) == 3 and contract.points(make(KINDS["answer"])) == 0
    plain = make({"cell_type": "code", "source": "", "metadata": {}})
    assert contract.nbgrader_meta(plain) == {} and contract.grade_id(plain) is None and contract.kind(plain) is None
    # a markdown cell with grade but no solution (nbgrader's task) is no test; a code cell with both is no answer
    assert not contract.is_test(make(_cell("markdown", grade=True, solution=False)))
    assert not contract.is_answer(make(_cell("code", grade=True, solution=True)))


def test_course_notebooks_hold_only_the_four_kinds():
    """Every nbgrader cell of the instructor notebooks is one of the kinds the table names."""
    import nbtools
    from autograder import paths
    for a in paths.present_assignments():
        for c in nbtools.solution_nb(a).cells:
            if contract.nbgrader_meta(c):
                assert contract.kind(c), f"{a}/{contract.grade_id(c)}: {contract.nbgrader_meta(c)}"


# ---------------------------------------------------------------------------------------------
# markers
# ---------------------------------------------------------------------------------------------
TEST_CELL = ('"""Checks the mask."""\nassert_close(mask(3), expected)\n'
             '### BEGIN HIDDEN TESTS\nassert_close(mask(7), reference(7))\n### END HIDDEN TESTS\n')
ANSWER_CELL = ('def mask(T):\n    """A causal mask."""\n'
               '    ### BEGIN SOLUTION\n    return torch.tril(ones(T, T))\n    ### END SOLUTION\n')


def test_regions_and_what_students_see():
    assert contract.regions(TEST_CELL) == [(contract.HIDDEN_TESTS, ["assert_close(mask(7), reference(7))"])]
    assert contract.hidden_lines(TEST_CELL) == ["assert_close(mask(7), reference(7))"]
    assert contract.visible_part(TEST_CELL) == '"""Checks the mask."""\nassert_close(mask(3), expected)\n'
    assert contract.regions(ANSWER_CELL) == [(contract.SOLUTION, ["    return torch.tril(ones(T, T))"])]
    assert contract.strip_solution_markers(ANSWER_CELL) == \
        'def mask(T):\n    """A causal mask."""\n    return torch.tril(ones(T, T))\n'
    assert contract.without_solutions(ANSWER_CELL) == 'def mask(T):\n    """A causal mask."""\n'
    written = "### BEGIN SOLUTION\n**Model answer.** Causal.\n\n**Rubric (2 points).** Says causal.\n### END SOLUTION"
    assert contract.cut_rubric(written) == "### BEGIN SOLUTION\n**Model answer.** Causal.\n\n### END SOLUTION"
    assert contract.instructor_only(written) == ["BEGIN SOLUTION", "END SOLUTION", "**Rubric", "**Model answer"]


@pytest.mark.parametrize("line", ["### BEGIN HIDEN TESTS", "## BEGIN HIDDEN TESTS", "### BEGIN SOLUTIONS",
                                  "# BEGIN SOLUTION", "#### END_SOLUTION"])
def test_a_misspelt_marker_looks_like_one(line):
    assert line not in contract.MARKERS and contract.MARKER_LIKE.search(line)


def test_exact_markers():
    assert contract.MARKERS == ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS",
                                "### END HIDDEN TESTS")


# ---------------------------------------------------------------------------------------------
# the kernel environment
# ---------------------------------------------------------------------------------------------
def test_apply_kernel_env():
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert contract.apply_kernel_env(env) is env
    assert env == {**contract.KERNEL_ENV, "OMP_WAIT_POLICY": "ACTIVE"}        # set values are kept
    assert contract.apply_kernel_env(env, override=True) == contract.KERNEL_ENV
    assert all(os.environ.get(k) for k in contract.KERNEL_ENV)            # tests/conftest.py applied it
    assert set(ENV_SIGNS) <= set(contract.KERNEL_ENV)


def test_course_mk_exports_the_kernel_environment():
    """scripts/course.mk's exports with a constant value are the kernel environment, and make gives them."""
    text = (ROOT / "scripts" / "course.mk").read_text()
    exports = dict(re.findall(r"^export\s+(\w+)\s*:?=\s*(.*?)\s*$", text, re.M))
    constant = {k: v for k, v in exports.items() if "$" not in v}
    assert constant == contract.KERNEL_ENV
    if not shutil.which("make"):
        pytest.skip("no make here to run scripts/course.mk")
    show = 'include scripts/course.mk\nshow-env:\n\t@env\n'
    r = subprocess.run(["make", "-s", "--no-print-directory", "-f", "-", "show-env"], input=show, cwd=ROOT,
                       env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    given = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert {k: given.get(k) for k in contract.KERNEL_ENV} == contract.KERNEL_ENV


def test_gpu_check_exports_the_kernel_environment():
    """scripts/gpu_check.sh exports the kernel environment and nothing else."""
    text = (ROOT / "scripts" / "gpu_check.sh").read_text()
    exported = {}
    for line in re.findall(r"^\s*export\s+(.*)$", text, re.M):
        exported.update(dict(a.split("=", 1) for a in line.split() if "=" in a))
    assert exported == contract.KERNEL_ENV


# ---------------------------------------------------------------------------------------------
# the leak rule
# ---------------------------------------------------------------------------------------------
REGION = ["scores = q @ k.transpose(-2, -1)", "scores = scores / math.sqrt(d)",
          "weights = torch.softmax(scores, dim=-1)", "return weights @ v"]


def test_significant_lines():
    assert contract.significant("    scores   =  q @ k.T   # similarity") == "scores = q @ k.T"
    assert contract.significant("# a comment of some length") is None
    assert contract.significant("else:") is None and contract.significant("return y") is None
    assert contract.significant("x = '#1 of many'") == "x = '#1 of many'"
    assert contract.markdown_line("# A heading of a model answer") == "# A heading of a model answer"
    assert len("return y") < contract.MIN_CHARS <= len("return out")


def test_three_consecutive_significant_lines_leak_and_two_do_not():
    region = contract.runs(REGION)
    assert contract.RUN == 3 and region
    three = ["def f(q, k, v, d):", *[f"    {line}" for line in REGION[:3]]]
    two = ["def f(q, k, v, d):", *[f"    {line}" for line in REGION[:2]], "    pass"]
    assert region & contract.runs(three)
    assert not region & contract.runs(two)


def test_comments_and_short_lines_do_not_count_and_do_not_break_a_run():
    padded = [REGION[0], "# the scaling keeps the softmax soft", "", "x = 1", REGION[1], "  ) ", REGION[2]]
    assert contract.runs(REGION) & contract.runs(padded)
    only_comments = [f"# {line}" for line in REGION]
    assert not contract.runs(only_comments)
    assert contract.runs(only_comments, markdown=True)      # in markdown a '#' line is text


def test_shown_finds_single_lines_in_a_page():
    page = "<td>weights: not passed</td><td>weights =  torch.softmax(scores, dim=-1)</td>"
    assert contract.shown(REGION, page) == ["weights = torch.softmax(scores, dim=-1)"]
    assert contract.shown(REGION, "<td>weights: not passed</td>") == []
    assert contract.shown(["# hidden: the mask must be causal"], "hidden: the mask must be causal") == []
    assert contract.shown(["# hidden: the mask must be causal"], "# hidden: the mask must be causal")


# ---------------------------------------------------------------------------------------------
# a test cell in pieces (feedback before the deadline counts hidden checks)
# ---------------------------------------------------------------------------------------------
def test_a_test_cell_in_pieces():
    cell = ('"""Checks."""\nx = f(3)\nassert x == 3, "visible"\n### BEGIN HIDDEN TESTS\ny = f(7)\n'
            'assert_close(y, g(7))\nassert y > 0\nz = 1\n### END HIDDEN TESTS\nprint("done")\n')
    pieces = contract.test_pieces(cell)
    assert [k for k, _ in pieces] == [contract.VISIBLE, contract.HIDDEN, contract.HIDDEN, contract.VISIBLE]
    assert pieces[1][1] == "y = f(7)\nassert_close(y, g(7))\n"          # its set-up belongs to it
    assert pieces[2][1] == "assert y > 0\nz = 1\n"                       # what follows the last check joins it
    assert contract.test_pieces('assert f(3) == 3\n') is None            # no hidden region: runs whole
    # a hidden region that does not parse alone (indented in a block): the cell runs whole
    assert contract.test_pieces('for n in (1, 2):\n    ### BEGIN HIDDEN TESTS\n    assert f(n)\n'
                                '    ### END HIDDEN TESTS\n') is None


def test_every_course_test_cell_with_hidden_checks_runs_in_pieces():
    """So that before the deadline feedback counts each hidden check and shows none of them: a
    cell that ran whole could only say it failed somewhere (autograder.grading.runner.where_unknown
    then hides its message)."""
    import nbtools
    from autograder import paths
    whole = [f"{a}/{contract.grade_id(c)}" for a in paths.present_assignments()
             for c in nbtools.solution_nb(a).cells
             if contract.is_test(c) and contract.hidden_lines(c.source) and contract.test_pieces(c.source) is None]
    assert not whole, f"these test cells would run whole (split their hidden regions into top-level checks): {whole}"


def test_a_failure_the_grader_cannot_place_is_hidden_when_the_cell_has_hidden_checks():
    from autograder.grading import runner
    assert runner.where_unknown(TEST_CELL) == contract.HIDDEN
    assert runner.where_unknown(contract.visible_part(TEST_CELL)) == contract.VISIBLE
