"""Every repository path and link the documentation names exists.

The documents: README.md, autograder/README.md, CONTRIBUTING.md and docs/*.md.

What counts as a path. Inline code spans (`...`) outside fenced code blocks (a fenced block
holds commands and sketches, not references). A span is a path when it
  * has no whitespace (a span with a space is a command, a signature or an option list),
  * is made of path characters only (letters, digits and _ - . / * < > + ~ …),
  * holds a letter, and
  * holds a "/" or ends in a source suffix (SOURCE_SUFFIXES: .py .md .toml .yml .yaml .sh
    .ipynb .mk .cfg). A bare name ending in .csv, .json, .png or .db (`roster.csv`,
    `grades.csv`) names an input or output the user chooses, so it is a path only with a "/";
    a suffix alone (`.ipynb`) names a kind of file, not a file.

Which paths are left alone (they do not name a file of the repository):
  * URLs ("://"), absolute paths (`/opt/...`, `/usr`) and home paths (`~/...`);
  * paths under a placeholder root: `WS/` (the grading workspace), `PREFIX/` (the hub's
    folder), `DIR/`, or one that starts with an ellipsis (`…/inbound/...`);
  * generated paths: under `build/` or `.venv/`;
  * paths whose first segment is a placeholder (`<student>/<assignment>/...`: the layout of a
    submission, not of the repository).

How a path is checked:
  * `<id>` is expanded over the present assignments (each `solutions/<id>/<id>.py`): every
    expansion must exist;
  * any other `<...>` and any `*` make it a glob: at least one file or folder must match;
  * a path with a "/" is taken from the repository root and must stay inside it
    (`../shared/...` fails: it is outside the repository);
  * a bare name (`nbgrader_config.py`) must be the name of a file somewhere in the repository.

Links: every Markdown link [text](target) whose target is not a URL must point, relative to
the document's folder, to a file or folder of the repository, and its #anchor, if any, to a
heading of the target Markdown file (GitHub's heading ids).
"""

import os
import re

import pytest

from autograder.paths import ROOT

SOURCE_SUFFIXES = (".py", ".md", ".toml", ".yml", ".yaml", ".sh", ".ipynb", ".mk", ".cfg")
DATA_SUFFIXES = (".csv", ".json", ".png", ".db")
PLACEHOLDER_ROOTS = ("WS/", "PREFIX/", "DIR/", "…", "...")
GENERATED_ROOTS = ("build/", ".venv/")
NOT_IN_THE_REPOSITORY = {".git", ".venv", "build", "__pycache__", ".pytest_cache", ".hypothesis",
                         ".ipynb_checkpoints", "node_modules"}

PATH_CHARS = re.compile(r"[\w\-./*<>+~…]+")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def documents():
    return [ROOT / "README.md", ROOT / "autograder" / "README.md", ROOT / "CONTRIBUTING.md",
            *sorted((ROOT / "docs").glob("*.md"))]


def assignments(root=ROOT):
    """The present assignment ids: every solutions/<id>/<id>.py."""
    return sorted(p.parent.name for p in (root / "solutions").glob("*/*.py") if p.stem == p.parent.name)


def repository_names(root=ROOT):
    """The names of every file in the repository (for bare names), build outputs excluded."""
    names = set()
    for _, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if d not in NOT_IN_THE_REPOSITORY and not d.endswith(".egg-info")]
        names.update(files)
    return names


def _without_fences(text):
    """The text with every fenced block blanked out, line numbers kept."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def is_path(span):
    if not PATH_CHARS.fullmatch(span) or not re.search(r"[A-Za-z]", span):
        return False
    if span in SOURCE_SUFFIXES + DATA_SUFFIXES:
        return False                                                  # `.ipynb`: a kind of file
    return "/" in span or span.endswith(SOURCE_SUFFIXES)


def is_left_alone(span):
    first = span.split("/", 1)[0]
    return ("://" in span or span.startswith(("/", "~")) or span.startswith(PLACEHOLDER_ROOTS)
            or span.startswith(GENERATED_ROOTS) or (first.startswith("<") and first.endswith(">")))


def _exists(rel, root):
    target = (root / rel).resolve()
    if root.resolve() not in (target, *target.parents):
        return False, "outside the repository"
    return target.exists(), "no such file or folder"


def check_path(span, root=ROOT, ids=None, names=None):
    """None if `span` names something in the repository, else the reason it does not."""
    ids = assignments() if ids is None else ids
    if "/" not in span and not re.search(r"[<*]", span):
        names = repository_names(root) if names is None else names
        return None if span in names else "no file of that name in the repository"
    candidates = [span.replace("<id>", a) for a in ids] if "<id>" in span else [span]
    for c in candidates:
        pattern = re.sub(r"<[^>/]+>", "*", c)
        if "*" in pattern:
            if not any(root.glob(pattern.rstrip("/"))):
                return f"nothing matches {pattern}"
            continue
        ok, why = _exists(c, root)
        if not ok:
            return why if c == span else f"{c}: {why}"
    return None


def github_anchor(heading):
    """GitHub's id for a heading: lower case, markup and punctuation dropped, spaces -> '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)          # a link keeps its text
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(md_text):
    seen, out = {}, set()
    for h in HEADING.findall(_without_fences(md_text)):
        a = github_anchor(h)
        n = seen.get(a, 0)
        seen[a] = n + 1
        out.add(a if n == 0 else f"{a}-{n}")
    return out


def check_link(target, doc, root=ROOT):
    if re.match(r"[a-z]+:", target):                                 # https:, mailto:
        return None
    path, _, anchor = target.partition("#")
    dest = (doc.parent / path).resolve() if path else doc.resolve()
    if root.resolve() not in (dest, *dest.parents):
        return "outside the repository"
    if not dest.exists():
        return "no such file or folder"
    if anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
        return f"no heading #{anchor} in {dest.relative_to(root.resolve())}"
    return None


def problems(doc, root=ROOT, ids=None, names=None):
    """['README.md:12: `x/y.py` (why)', ...] for one document."""
    text = _without_fences(doc.read_text())
    names = repository_names(root) if names is None else names
    rel = doc.relative_to(root)
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for span in CODE_SPAN.findall(line):
            span = span.strip()
            if is_path(span) and not is_left_alone(span):
                why = check_path(span, root, ids, names)
                if why:
                    out.append(f"{rel}:{lineno}: `{span}` ({why})")
        for target in LINK.findall(line):
            why = check_link(target, doc, root)
            if why:
                out.append(f"{rel}:{lineno}: link ({target}) ({why})")
    return out


@pytest.fixture(scope="module")
def names():
    return repository_names()


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_the_document_names_exists(doc, names):
    found = problems(doc, names=names)
    assert not found, "paths in the documentation that the repository does not have:\n  " + "\n  ".join(found)


def test_the_check_flags_what_it_should(tmp_path):
    """The rules on a made-up repository: bad paths are flagged, placeholders and commands are not."""
    for f in ("solutions/01_a/01_a.py", "solutions/02_b/02_b.py", "tests/wrong/w01_a.py",
              "archlab/checks.py", "guide.md"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("# Guide\n\n## The house\n")
    doc = tmp_path / "README.md"
    doc.write_text("\n".join([
        "# Readme",
        "Fine: `archlab/checks.py`, `archlab/`, `checks.py`, `solutions/<id>/<id>.py`, `archlab/<concept>.py`,",
        "`archlab/*.py`, [guide](guide.md#the-house), [here](#readme), [site](https://example.org/x.md).",
        "Left alone: `WS/submitted/`, `PREFIX/hub/x.csv`, `build/grades.csv`, `/opt/hub/x.csv`, `~/x/`,",
        "`https://example.org/a.md`, `python -m autograder build <id>`, `<student>/<a>/<a>.ipynb`,",
        "`(B, L, D)`, `\"attention\"/\"mamba\"`, `roster.csv`, `autograder.course.leaks`, `…/inbound/x/`, `.ipynb`.",
        "```bash",
        "python3 ../outside/tool.py `not/checked.py`",
        "```",
        "Bad: `archlab/nosuch.py`, `../shared/COURSE.md`, `nosuch.py`, `tests/wrong/w<id>.py`,",
        "`archlab/*.txt`, [gone](nosuch.md), [no section](guide.md#no-such-section), `nosuchdir/<x>.py`.",
    ]))
    found = problems(doc, tmp_path, ids=assignments(tmp_path), names=repository_names(tmp_path))
    flagged = {re.search(r"(`[^`]+`|link \([^)]+\))", f).group(1) for f in found}
    assert flagged == {"`archlab/nosuch.py`", "`../shared/COURSE.md`", "`nosuch.py`", "`tests/wrong/w<id>.py`",
                       "`archlab/*.txt`", "link (nosuch.md)", "link (guide.md#no-such-section)",
                       "`nosuchdir/<x>.py`"}, found
    assert any("outside the repository" in f for f in found if "COURSE.md" in f)
    assert any("tests/wrong/w02_b.py" in f for f in found), found      # <id> expanded: 02_b has none
    assert {f.split(":")[1] for f in found} == {"10", "11"}, found


def test_github_anchors():
    assert github_anchor("Running a term on one server (the hub)") == "running-a-term-on-one-server-the-hub"
    assert github_anchor("Backends: this machine or a Dask cluster") == "backends-this-machine-or-a-dask-cluster"
    assert github_anchor("3. Exercise: `measure_prefill`") == "3-exercise-measure_prefill"
    assert github_anchor("01_self_attention — reading §1") == "01_self_attention--reading-1"
