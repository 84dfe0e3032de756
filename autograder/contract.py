"""The authoring contract: what a course notebook's cells are, where its answers and hidden tests
lie, the environment its kernels run in, and when a text gives an answer away.

Every other module (and the tests) asks this one; `tests/basics/test_contract.py` fails on a second
spelling of the cell predicates, the marker regexes or the kernel environment. It imports
nothing from the project, so any room may use it.

Cells (nbgrader's metadata, `metadata.nbgrader`, as this course uses it):

    kind      cell type  solution  grade  locked   what it is
    answer    code       true      false  false    the student's code, scored by a test cell
    test      code       false     true   true     visible tests, then a hidden-test region; points
    written   markdown   true      true   false    graded by hand: a model answer and a rubric
    given     code       false     false  true     the course's code, read-only

Markers: in the instructor's version an answer cell (and a written answer) holds its solution
between `### BEGIN SOLUTION` and `### END SOLUTION`; a test cell holds its hidden tests between
`### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`. nbgrader acts on these lines only when
they are spelled exactly so.

The leak rule: a line counts (is *significant*) when, whitespace folded and a trailing comment
dropped, it has at least MIN_CHARS characters (`else:`, `return y`, a closing bracket do not).
A file leaks a region when RUN consecutive significant lines of the region appear in it,
consecutively: three lines carry an idea and are rare by chance; one or two shared lines (an
import, a signature) are not a leak. A page that shows no code at all (a student's feedback)
must show no significant line of a hidden test: `shown`.
"""

import ast
import os
import re

# ---------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------


def nbgrader_meta(cell):
    """The cell's nbgrader metadata ({} for an ordinary cell); an nbformat node or a plain dict."""
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_id(cell):
    """The cell's grade id, or None for an ordinary cell."""
    return nbgrader_meta(cell).get("grade_id")


def _flags(cell):
    m = nbgrader_meta(cell)
    return cell.get("cell_type"), bool(m.get("solution")), bool(m.get("grade")), bool(m.get("locked"))


def is_answer(cell):
    """An autograded answer: a code cell the student writes (solution true, grade false)."""
    kind, solution, grade, _ = _flags(cell)
    return kind == "code" and solution and not grade


def is_test(cell):
    """A graded test cell: code with points (grade true, solution false)."""
    kind, solution, grade, _ = _flags(cell)
    return kind == "code" and grade and not solution


def is_written(cell):
    """A written answer, graded by hand: markdown with grade and solution true."""
    kind, solution, grade, _ = _flags(cell)
    return kind == "markdown" and grade and solution


def is_locked(cell):
    """nbgrader keeps the cell as the course wrote it (test cells and given cells)."""
    return _flags(cell)[3]


def is_given(cell):
    """A given (read-only) code cell: locked, neither an answer nor a test."""
    kind, solution, grade, locked = _flags(cell)
    return kind == "code" and locked and not solution and not grade


def has_solution(cell):
    """The student's part of the notebook (solution true: an answer or a written answer); in
    the instructor's version it holds a solution region, and the student's source is graded."""
    return _flags(cell)[1]


def points(cell):
    """The points of a graded cell (0 for any other)."""
    return nbgrader_meta(cell).get("points", 0)


def kind(cell):
    """"answer", "test", "written", "given" or None (an ordinary cell)."""
    for name, test in (("answer", is_answer), ("test", is_test), ("written", is_written), ("given", is_given)):
        if test(cell):
            return name
    return None


# ---------------------------------------------------------------------------------------------
# markers
# ---------------------------------------------------------------------------------------------
SOLUTION, HIDDEN_TESTS = "SOLUTION", "HIDDEN TESTS"           # the two kinds of region
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS)

# A line that looks like a marker but is not one of MARKERS (a misspelling nbgrader would not act
# on, publishing a hidden test or a solution): the build refuses it.
MARKER_LIKE = re.compile(r"^[ \t]*#+[ \t]*(BEGIN|END)\b|^[ \t]*#{2,}.*\b(SOLUTION|HIDDEN|HIDEN)\b|"
                         r"\b(BEGIN|END)[ \t_]*(SOLUTION|HIDDEN)")

# Any region, in code or in markdown: group 1 its kind (SOLUTION or HIDDEN TESTS), group 2 its
# lines without the markers. A markdown marker may be written as a heading comment, `# ### ...`.
REGION = re.compile(r"^[ \t]*(?:# )?### BEGIN (SOLUTION|HIDDEN TESTS)[ \t]*\n(.*?)^[ \t]*(?:# )?### END \1",
                    re.M | re.S)
# A hidden-test region, markers included (what nbgrader cuts from the student's test cell).
HIDDEN_REGION = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[ \t]*\n.*?^[ \t]*### END HIDDEN TESTS[ \t]*\n?",
                           re.M | re.S)
# A solution region, markers included: group 1 its indentation, group 2 its lines.
SOLUTION_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[ \t]*\n(.*?)^[ \t]*### END SOLUTION[ \t]*\n?",
                             re.M | re.S)
# One solution marker line, in code or in markdown.
SOLUTION_MARKER = re.compile(r"^[ \t]*(?:# )?### (?:BEGIN|END) SOLUTION[ \t]*\n?", re.M)
# In a written answer: "**Rubric ..." to the end of the solution region is the instructor's.
RUBRIC_WORD, MODEL_ANSWER_WORD = "**Rubric", "**Model answer"
RUBRIC = re.compile(r"^\*\*Rubric.*?(?=^[ \t]*### END SOLUTION|\Z)", re.M | re.S)

# Words that only the instructor's version of a notebook holds.
INSTRUCTOR_ONLY = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION",
                   RUBRIC_WORD, MODEL_ANSWER_WORD)


def regions(source):
    """[(kind, lines)] of every region of a cell's source: kind SOLUTION or HIDDEN TESTS, lines the
    region's lines without its markers."""
    return [(m.group(1), m.group(2).splitlines()) for m in REGION.finditer(source)]


def hidden_lines(source):
    """The lines of every hidden-test region of a cell's source (markers excluded)."""
    return [line for k, lines in regions(source) if k == HIDDEN_TESTS for line in lines]


def visible_part(source):
    """A test cell as students have it: every hidden-test region cut out."""
    return HIDDEN_REGION.sub("", source)


def without_solutions(source):
    """The cell without its solution regions (markers and lines): what the release keeps of it."""
    return SOLUTION_REGION.sub("", source)


def strip_solution_markers(source):
    """The solution as a student would have typed it: marker lines removed, everything else kept."""
    return SOLUTION_MARKER.sub("", source)


def cut_rubric(source):
    """A written answer without its rubric (the model answer stays)."""
    return RUBRIC.sub("", source)


def instructor_only(text):
    """The words of INSTRUCTOR_ONLY that `text` holds."""
    return [w for w in INSTRUCTOR_ONLY if w in text]


# ---------------------------------------------------------------------------------------------
# the kernel environment
# ---------------------------------------------------------------------------------------------
# Every kernel the course starts (papermill, nbgrader, the grading sandbox, the hub's servers,
# the tests) and every command of the Makefile runs with these: nothing may reach a model hub;
# two OpenMP threads spin-wait and stall fresh processes unless told to sleep; the tokenizers'
# thread pool must not fork with the kernel. scripts/course.mk and scripts/gpu_check.sh export
# the same (the student edition has no `autograder`); tests/basics/test_contract.py compares them.
KERNEL_ENV = {"HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE", "TOKENIZERS_PARALLELISM": "false"}


def apply_kernel_env(env=None, override=False):
    """Put KERNEL_ENV into `env` (default os.environ): each variable that is not set yet, or every
    one with override=True. Returns env."""
    env = os.environ if env is None else env
    for k, v in KERNEL_ENV.items():
        if override:
            env[k] = v
        else:
            env.setdefault(k, v)
    return env


# ---------------------------------------------------------------------------------------------
# the leak rule
# ---------------------------------------------------------------------------------------------
MIN_CHARS = 10
RUN = 3


def _drop_comment(s):
    """s without a trailing `# ...` comment ('#' inside a one-line string literal is kept)."""
    quote = None
    for i, ch in enumerate(s):
        if quote:
            if ch == quote and s[i - 1] != "\\":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return s[:i]
    return s


def fold(text):
    """Whitespace folded: every run of spaces, tabs and newlines one space, none at the ends."""
    return " ".join(text.split())


def significant(line):
    """A line of code as compared (whitespace folded, comment dropped), or None if it does not count."""
    s = fold(_drop_comment(line))
    return s if len(s) >= MIN_CHARS else None


def markdown_line(line):
    """A line of markdown as compared: its text is the content (a '#' starts no comment)."""
    s = fold(line)
    return s if len(s) >= MIN_CHARS else None


def runs(lines, markdown=False):
    """Every run of RUN consecutive significant lines, as tuples."""
    keep = [k for k in ((markdown_line if markdown else significant)(line) for line in lines) if k]
    return {tuple(keep[i:i + RUN]) for i in range(len(keep) - RUN + 1)}


def significant_lines(lines):
    """Each line of `lines` in every form in which it counts: as code and as text."""
    return {s for line in lines for s in (significant(line), markdown_line(line)) if s}


def shown(lines, text):
    """The significant lines of `lines` that appear anywhere in `text` (whitespace folded), sorted:
    for a page that must show no line of a region at all."""
    text = fold(text)
    return sorted(s for s in significant_lines(lines) if s in text)


# ---------------------------------------------------------------------------------------------
# what a test checks
# ---------------------------------------------------------------------------------------------
def test_description(source):
    """What a test cell checks, for feedback: its docstring (the cell's first statement, which may
    wrap over several lines), as one line of text. The grader captures it when a submission is
    graded, from the instructor's test cell (never student text)."""
    try:
        doc = ast.get_docstring(ast.parse(source))
    except SyntaxError:           # IPython syntax (a magic) in the cell: the first line, unquoted
        doc = (source.strip().splitlines() or [""])[0].strip("\"'")
    return " ".join((doc or "").split())


# ---------------------------------------------------------------------------------------------
# a test cell in pieces: what feedback before the deadline counts
# ---------------------------------------------------------------------------------------------
VISIBLE, HIDDEN = "visible", "hidden"


def _is_check(stmt):
    """Does this top-level statement check something: an assert, a raise, or a call of an
    assert*/check*/raises function (assert_close, assert_shape, pytest.raises, ...)?"""
    for node in ast.walk(stmt):
        if isinstance(node, ast.Assert | ast.Raise):
            return True
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name.startswith(("assert", "check", "raises")):
                return True
    return False


def hidden_checks(body):
    """A hidden region's lines (markers excluded) as its checks, in order: each check is the
    statements up to and including one top-level statement that checks something (the set-up
    before it belongs to it; statements after the last check join it). None when the region
    does not parse on its own."""
    try:
        stmts = ast.parse(body).body
    except SyntaxError:
        return None
    lines = body.splitlines(keepends=True)
    checks, start = [], 0
    for stmt in stmts:
        if _is_check(stmt):
            checks.append("".join(lines[start:stmt.end_lineno]))
            start = stmt.end_lineno
    rest = "".join(lines[start:])
    if any(s.lineno > start for s in stmts):       # statements after the last check
        if checks:
            checks[-1] += rest
        else:
            checks.append(rest)
    return checks or None


def test_pieces(source):
    """A test cell as the grader runs it, piece by piece: [(VISIBLE, source) or (HIDDEN, source)]
    in the cell's order, each hidden region split into its checks (hidden_checks), so that
    feedback before the deadline can say "hidden checks: 2 of 3 pass" without showing them. None
    when the cell has no hidden region or a piece would not run on its own (the cell then runs
    whole)."""
    pieces, pos = [], 0
    for m in REGION.finditer(source):
        if m.group(1) != HIDDEN_TESTS:
            continue
        before = source[pos:m.start()]
        if before.strip():
            pieces.append((VISIBLE, before))
        checks = hidden_checks(m.group(2))
        if checks is None:
            return None
        pieces += [(HIDDEN, c) for c in checks]
        pos = m.end()
    if not any(k == HIDDEN for k, _ in pieces):
        return None
    rest = source[pos:]
    if rest.strip():
        pieces.append((VISIBLE, rest))
    for _, piece in pieces:
        try:
            ast.parse(piece)
        except SyntaxError:
            return None
    return pieces


# ---------------------------------------------------------------------------------------------
# named mistakes: which known mistake a failure is (archlab.checks.mistake in the test cell)
# ---------------------------------------------------------------------------------------------
UNRECOGNISED = "unrecognised"     # TestResult.mistake of a failure that no named mistake explains
# Failures every test cell can have, named by the course rather than by a cell: an answer left as
# its stub, and a checkpoint answer in the wrong form (archlab.checks.check_choice's messages).
# archlab.checks' own checks name theirs too: a call into a reference (no_reference) or into
# torch's fused attention (no_fused_attention).
BUILTIN_MISTAKES = {
    # a function left as its stub raises in the test; a variable left as its stub is never defined
    "not-answered": re.compile(r"^NotImplementedError\b|^NameError: name '\w+' is not defined"),
    "answer-form": re.compile(r"must be (?:exactly )?one of |must be a string holding one letter"),
    "calls-reference": re.compile(r"must be your own code: it called the reference"),
    "fused-attention": re.compile(r"must compute attention itself: it called"),
}
_MIN_LITERAL = 8                  # a hint must keep this many literal characters to be recognisable


def _hint_parts(node):
    """A hint expression's text as parts: literal strings, None for an f-string's placeholders;
    None when it is not a (formatted) string literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value if isinstance(v, ast.Constant) else None for v in node.values]
    return None


def _declared(source):
    """[(slug, parts)] of every ``mistake("slug", hint)`` call in a test cell."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or len(node.args) != 2:
            continue
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        slug = node.args[0]
        if name != "mistake" or not (isinstance(slug, ast.Constant) and isinstance(slug.value, str)):
            continue
        parts = _hint_parts(node.args[1])
        if parts is not None and sum(len(p) for p in parts if p) >= _MIN_LITERAL:
            found.append((slug.value, parts))
    return found


def hint_texts(source):
    """{slug: [hint text, "{}" for each placeholder]} that a test cell declares."""
    out = {}
    for slug, parts in _declared(source):
        out.setdefault(slug, []).append("".join("{}" if p is None else p for p in parts))
    return out


def mistakes(source):
    """The named mistakes a test cell declares, {slug: [regex of each of its hints]}: every
    ``mistake("slug", "hint")`` call in the cell (visible and hidden parts); an f-string's
    placeholders match anything. A slug declared twice in one cell keeps both hints."""
    out = {}
    for slug, parts in _declared(source):
        out.setdefault(slug, []).append(
            re.compile("".join(".*?" if p is None else re.escape(p) for p in parts), re.S))
    return out


def exercise_of(test_id):
    """The exercise a test cell grades: its grade id without the `test_` prefix."""
    return test_id.removeprefix("test_")


def mistake_id(assignment, test_id, slug):
    return f"{assignment}/{exercise_of(test_id)}/{slug}"


def recognise(source, error, assignment, test_id):
    """The id of the named mistake that a failed test cell's first error shows
    (``<assignment>/<exercise>/<slug>``), or UNRECOGNISED. ``error`` is "Type: message", as the
    grader records it; ``source`` is the instructor's test cell. When several hints match, the
    one with the most literal text (the most specific) wins."""
    best, best_len = None, -1
    for slug, patterns in mistakes(source).items():
        for p in patterns:
            if p.search(error):
                literal = len(re.sub(r"\\(.)", r"\1", p.pattern.replace(".*?", "")))
                if literal > best_len:
                    best, best_len = slug, literal
    if best is None:
        best = next((slug for slug, p in BUILTIN_MISTAKES.items() if p.search(error)), None)
    return mistake_id(assignment, test_id, best) if best else UNRECOGNISED
