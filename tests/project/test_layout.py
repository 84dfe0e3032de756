"""The test suite's own layout, so its tiers stay honest as tests are added.

Every test file lives in a room of tests/ that mirrors a package (archlab/, archref/, the rooms of
autograder: course/, grading/, reports/, classroom/, and basics/ for autograder's top-level
modules) or is notebooks/ (per-notebook and generic notebook tests) or project/ (the repository:
environment, figures, scripts, docs). Basenames are unique and rooms hold no __init__.py (pytest's
default import mode imports each file by its basename).

A test that needs a browser, a hub, root or whole-notebook runs carries the marker, so that
`make test-fast` (-m "not browser and not hub and not notebooks and not slow") never starts
one: the checks read each file's source (imports, calls, fixtures, markers), without running it.
Slow tests cannot be found by reading; tests/conftest.py lists, at the end of a run, every test
that took over 20 s without the `slow` marker.
"""

import ast

import pytest

from autograder.paths import ROOT

TESTS = ROOT / "tests"
PACKAGES = {"archlab": ROOT / "archlab", "archref": ROOT / "archref", "basics": ROOT / "autograder",
            "course": ROOT / "autograder" / "course", "grading": ROOT / "autograder" / "grading",
            "reports": ROOT / "autograder" / "reports", "classroom": ROOT / "autograder" / "classroom"}
ROOMS = set(PACKAGES) | {"notebooks", "project"}
# not test rooms: the shared material (tests/wrong/ the wrong answers, tests/honest/ independent right ones,
# tests/hostile/ the corpus)
MATERIAL = {"wrong", "honest", "hostile", "__pycache__"}
MARKERS = {"slow", "browser", "hub", "root", "notebooks"}

# What makes a test need a marker, as it reads in a test file (a name called or referred to, or a
# fixture of tests/conftest.py it asks for).
NEEDS = {
    "browser": {"require_browser", "sync_playwright", "LabServer", "check_notebook", "CHROMIUM"},
    "hub": {"require_hub", "PrivatePostgres", "studentenv.environment", "hub.setup"},
    "root": {"geteuid", "require_hub", "sandbox.available"},
    "notebooks": {"execute.execute", "papermill.execute_notebook", "grade.grade", "autograde.autograde",
                  "model_solutions.make", "nbclient", "autograde_batch", "hh.cli"},
}
# a module that imports one of these helpers carries its marker on every test (pytestmark)
HELPER_MARKERS = {"hub_helpers": {"hub", "root"}}


def _test_files():
    return sorted(TESTS.rglob("test_*.py"))


def test_every_test_file_is_in_a_room_that_mirrors_a_package():
    misplaced = []
    for f in _test_files():
        rel = f.relative_to(TESTS)
        if rel.parts[0] in MATERIAL:
            continue
        if len(rel.parts) != 2 or rel.parts[0] not in ROOMS:
            misplaced.append(str(rel))
    assert not misplaced, f"test files outside tests/<room>/ (rooms: {sorted(ROOMS)}): {misplaced}"
    for room, package in PACKAGES.items():
        assert (package / "__init__.py").is_file(), f"tests/{room}/ mirrors {package}, which is not a package"
    assert not list(TESTS.glob("test_*.py")), "no test file at the top of tests/: put it in its room"


def test_basenames_are_unique_and_rooms_are_not_packages():
    names = {}
    for f in _test_files():
        names.setdefault(f.name, []).append(str(f.relative_to(TESTS)))
    assert {n: p for n, p in names.items() if len(p) > 1} == {}, "two test files share a basename"
    assert not [r for r in ROOMS if (TESTS / r / "__init__.py").exists()], \
        "a room with __init__.py becomes a package named like the real one (archlab, archref)"


def test_helpers_stay_at_the_top_of_tests():
    for helper in ("conftest.py", "nbtools.py", "browser_helpers.py", "hub_helpers.py", "exchange_helpers.py"):
        assert (TESTS / helper).is_file(), f"tests/{helper} moved: every room imports it from tests/"


# ---- markers, read from the source --------------------------------------------------------------

def _mark_names(node):
    """{marker} of one `pytest.mark.X` / `pytest.mark.X(...)` expression or a list of them."""
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute) and sub.value.attr == "mark":
            out.add(sub.attr)
    return out & MARKERS


def _uses(node):
    """Names and dotted names (a.b) a piece of code refers to."""
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            out.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            out.add(sub.attr)
            if isinstance(sub.value, ast.Name):
                out.add(f"{sub.value.id}.{sub.attr}")
        elif isinstance(sub, ast.arg):
            out.add(sub.arg)
    return out


def _patched(node):
    """Targets a function replaces with monkeypatch.setattr: their calls run no notebook."""
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "setattr" \
                and sub.args and isinstance(sub.args[0], (ast.Name, ast.Attribute)):
            out.add(ast.unparse(sub.args[0]).split(".")[0])
    return out


def _functions(tree):
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _is_fixture(fn):
    return any("fixture" in ast.unparse(d) for d in fn.decorator_list)


CONFTEST_FIXTURES = {name: fn for name, fn in _functions(ast.parse((TESTS / "conftest.py").read_text())).items()
                     if _is_fixture(fn)}


def _needs(fn, fixtures, seen=None):
    """The markers a test (or fixture) needs: from its own code and the fixtures it asks for."""
    seen = set() if seen is None else seen
    used, patched = _uses(fn), _patched(fn)
    need = set()
    for marker, triggers in NEEDS.items():
        hits = {t for t in triggers & used if t.split(".")[0] not in patched}
        if hits:
            need.add(marker)
    for arg in fn.args.args:
        fixture = fixtures.get(arg.arg) or CONFTEST_FIXTURES.get(arg.arg)
        if fixture is not None and arg.arg not in seen:
            seen.add(arg.arg)
            need |= _needs(fixture, fixtures, seen)
    return need


def _imports(tree):
    names = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            names |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module:
            names.add(n.module)
    return names


def _module_marks(tree):
    for n in tree.body:
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in n.targets):
            return _mark_names(n.value)
    return set()


def marker_problems(source, name="<test file>"):
    """What a test file lacks: ["file::test: needs marker X", ...] (empty when every need is marked)."""
    tree = ast.parse(source)
    module = _module_marks(tree)
    problems = [f"{name}: imports {h}, so every test needs pytestmark with {sorted(m - module)}"
                for h, m in HELPER_MARKERS.items() if h in _imports(tree) and not m <= module]
    functions = _functions(tree)
    fixtures = {n: fn for n, fn in functions.items() if _is_fixture(fn)}
    for test_name, fn in functions.items():
        if not test_name.startswith("test_"):
            continue
        carried = module | set().union(*(_mark_names(d) for d in fn.decorator_list))
        missing = _needs(fn, fixtures) - carried
        if missing:
            problems.append(f"{name}::{test_name}: needs the marker(s) {sorted(missing)}")
    return problems


@pytest.mark.parametrize("path", _test_files(), ids=lambda p: str(p.relative_to(TESTS)))
def test_tests_that_need_a_browser_hub_root_or_notebook_runs_are_marked(path):
    problems = marker_problems(path.read_text(), str(path.relative_to(TESTS)))
    assert not problems, "\n".join(problems)


def test_the_marker_check_can_fail():
    """An unmarked browser test, hub test, root test and notebook run are each reported;
    marked at module or function level they pass; a run through a monkeypatched papermill is no run."""
    unmarked = '''
import os
import pytest
import browser_helpers as bh
import hub_helpers as hh
from autograder.course import execute

@pytest.fixture(scope="module")
def lab():
    bh.require_browser("x")

def test_browser(lab):
    pass

@pytest.mark.skipif(os.geteuid() != 0, reason="root")
def test_root():
    pass

def test_runs(tmp_path):
    execute.execute("01_self_attention", out_dir=tmp_path)

def test_fake_run(tmp_path, monkeypatch):
    monkeypatch.setattr(execute.papermill, "execute_notebook", lambda *a, **k: None)
    execute.execute("01_self_attention", out_dir=tmp_path)

def test_batch(autograde_batch):
    pass
'''
    problems = marker_problems(unmarked)
    assert any("hub_helpers" in p for p in problems)
    for test, marker in (("test_browser", "browser"), ("test_root", "root"), ("test_runs", "notebooks"),
                         ("test_batch", "notebooks")):
        assert any(f"::{test}:" in p and marker in p for p in problems), (test, problems)
    assert not any("::test_fake_run:" in p and "notebooks" in p for p in problems), problems
    marked = unmarked.replace("import pytest\n", "import pytest\npytestmark = [pytest.mark.hub, pytest.mark.root]\n")
    marked = marked.replace("def test_browser", "@pytest.mark.browser\ndef test_browser")
    marked = marked.replace("def test_runs", "@pytest.mark.notebooks\ndef test_runs")
    marked = marked.replace("def test_batch", "@pytest.mark.notebooks\ndef test_batch")
    assert marker_problems(marked) == []


def test_markers_are_declared_in_pyproject():
    import tomllib
    declared = {m.split(":")[0].strip() for m in
                tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]}
    assert declared == MARKERS
