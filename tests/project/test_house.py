"""The house's rules, read from the code itself: imports run one way between the rooms and form
no cycle, only the command line prints, instructor errors are one line, and the package
installs whole (every subpackage) without the repository."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import cli, contract, paths

ROOT = paths.ROOT
PACKAGES = ("archlab", "archref", "autograder")
# The rooms of autograder from the top down: a module may import its own room or a lower one.
LAYERS = ["autograder.__main__", "autograder.cli", "autograder.classroom", "autograder.grade",
          "autograder.reports", "autograder.grading", "autograder.course",
          "autograder.basics"]   # paths, nbg, errors, zmqpoll, nbgrader_config (and contract)


def module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def project_modules():
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))
            if "__pycache__" not in p.parts}


def imports_of(name, path, known):
    """The project modules `name` imports (absolute or relative, at any depth of the file)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                base = ".".join(up[:len(up) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def graph():
    known = project_modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(edges):
    """Every cycle of the graph (Tarjan's strongly connected components of more than one node,
    or a node importing itself)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def layer(name):
    for i, prefix in enumerate(LAYERS[:-1]):
        if name == prefix or name.startswith(prefix + "."):
            return i
    return len(LAYERS) - 1


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_projects_modules():
    assert cycles(graph()) == []


def test_imports_run_one_way_between_the_rooms():
    """cli -> classroom -> grade -> reports -> grading -> course -> basics: never upwards."""
    bad = [f"{a} imports {b}" for a, deps in graph().items() if a.startswith("autograder")
           for b in deps if b.startswith("autograder") and layer(b) < layer(a)]
    assert bad == []


def test_only_the_command_line_prints():
    """Library modules return data and log progress; autograder/cli.py alone prints (a print
    inside a string that runs in another process, e.g. `python -c "...print(...)"`, is no call)."""
    printing = []
    for name, path in project_modules().items():
        if not name.startswith("autograder") or name == "autograder.cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                printing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Name) and node.id == "print" and isinstance(node.ctx, ast.Load):
                printing.append(f"{path.relative_to(ROOT)}:{node.lineno} (print passed around)")
    assert printing == []


def _cli(capsys, *argv):
    with pytest.raises(SystemExit) as stop:
        cli.main(list(argv))
    out = capsys.readouterr()
    return stop.value.code, out.out, out.err


def test_a_misspelt_marker_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    a = paths.present_assignments()[0]
    src = (paths.SOLUTIONS / a / f"{a}.py").read_text()
    assert "### BEGIN SOLUTION" in src
    (tmp_path / a).mkdir()
    (tmp_path / a / f"{a}.py").write_text(src.replace("### BEGIN SOLUTION", "### BEGIN SOLUTON", 1))
    monkeypatch.setattr(paths, "SOLUTIONS", tmp_path)
    code, out, err = _cli(capsys, "build", a)
    assert code == 1 and "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1 and "looks like an nbgrader marker" in err, err


def test_a_missing_folder_and_a_bad_roster_are_one_line(tmp_path, capsys):
    code, _, err = _cli(capsys, "collect", str(tmp_path / "nowhere"), "--workspace", str(tmp_path / "ws"))
    assert code == 1 and len(err.strip().splitlines()) == 1 and "nowhere" in err
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\nann,Ann\n")
    code, _, err = _cli(capsys, "hub", "--roster", str(roster), "--setup-only", "--prefix", str(tmp_path / "hub"))
    assert code == 1 and "Traceback" not in err and "roster" in err.splitlines()[0]


def test_autograde_prints_a_line_per_record(tmp_path, capsys, monkeypatch):
    from autograder.grading import results
    done = [results.Record("ann", "01_self_attention", "graded"),
            results.failed("bob", "01_self_attention", "not a valid notebook file")]
    monkeypatch.setattr(cli.autograde, "autograde", lambda ws, settings: done)
    cli.main(["autograde", "--workspace", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [["ann", "01_self_attention", "graded"],
                                                    ["bob", "01_self_attention", "failed"]]
    assert lines[1].endswith("not a valid notebook file")


def test_the_old_spelling_of_publish_still_works_and_says_so(tmp_path, capsys, monkeypatch):
    seen = []
    monkeypatch.setattr(cli.exchange, "release", lambda ws, a, due: seen.append((a, due)) or tmp_path / a)
    a = paths.present_assignments()[0]
    cli.main(["release", a, "--exchange", "--workspace", str(tmp_path)])
    out = capsys.readouterr().out
    assert "now `publish`" in out and seen == [(a, None)]


@pytest.mark.slow
def test_a_non_editable_install_has_every_subpackage(tmp_path):
    """The project as a wheel, `pip install --no-deps` into a fresh venv that sees the course venv's packages: every
    subpackage (archlab.widgets, the rooms of autograder) imports from site-packages, and the
    student edition's templates come along."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # the course venv's packages (torch, nbgrader, ...) without its editable archlab
    site = next(Path(sys.prefix).glob("lib/python3.*/site-packages"))
    (next(venv.glob("lib/python3.*/site-packages")) / "course.pth").write_text(str(site) + "\n")
    build = tmp_path / "src"     # the working tree without its venv, build/ or .git
    shutil.copytree(ROOT, build, ignore=shutil.ignore_patterns(".venv", "build", ".git", "__pycache__", "*.egg-info"))
    # a wheel built with the course's setuptools (nothing downloaded), installed by the fresh venv's pip
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                        "-w", str(tmp_path / "dist"), "."], cwd=build, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = (tmp_path / "dist").glob("archlab-*.whl")
    r = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    subpackages = sorted({module_name(p.parent) for pkg in PACKAGES for p in (ROOT / pkg).rglob("__init__.py")})
    assert "archlab.widgets" in subpackages and "autograder.grading" in subpackages
    code = ("import importlib, sys, pathlib\n"
            f"names = {subpackages!r}\n"
            "for n in names:\n"
            "    m = importlib.import_module(n)\n"
            "    assert 'site-packages' in m.__file__, (n, m.__file__)\n"
            "from autograder.course import bundle\n"
            "assert (bundle.TEMPLATES / 'README.md').exists(), bundle.TEMPLATES\n"
            "print('ok', len(names))\n")
    r = subprocess.run([str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       env=contract.apply_kernel_env({"PATH": "/usr/bin:/bin"}))
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stdout + r.stderr
