"""Checkpoint questions test understanding, not the page's layout or its wording.

Every A-D question of the course is found the way a grader sees it: an autograded answer cell
whose test cell calls ``check_choice(...)`` with the letters A-D (the default), the key being the
letter its hidden test compares the answer with (``assert q1_choice == "C"``), and the options the
``* **A.** ...`` items of the last markdown cell before the answer cell. Two ways a student could
score without understanding are ruled out:

* **The longest option.** Keys written with more care tend to be longer. The key is the longest
  option (by characters of its words, markup dropped; a tie counts as longest) in at most a
  third of the questions.
* **The key written above the question.** A *distinguishing phrase* of the key is a run of
  ``NGRAM`` = 4 consecutive words of the key option (lower-cased; markdown, maths markup and
  punctuation dropped) that is a run of no other option of the question and holds at least two
  words that are not function words ("the", "of", "is", ...). It is what the key says and the
  distractors do not. No distinguishing phrase of a key may appear in the student notebook's
  visible text (every cell's source as released, markdown and code) before the question's cell:
  else the question can be answered by matching text.

The same holds for the questions answered with numbers (``q3_max_context_tokens = ...``): a key of
three digits or more is not written above its question in any grouping (262144, 262,144), and no key
is written above as the answer's assignment, nor a ratio's key as a ratio ("a factor of 8", "8 times
smaller").
Sentences that once gave a key away in other words (an audit found them; a phrase match cannot)
are pinned in ``KEY_STATEMENTS`` and may not come back above their questions.

The letter spread (no letter keys more than 40 % of the questions) is checked in
test_release.py.
"""

import ast
import re
from dataclasses import dataclass

import pytest

import nbtools

NGRAM = 4
FUNCTION_WORDS = set("""
a an the of to in on at by for with from as and or nor but so than then that this these those it its
is are was were be been being has have had do does did can could will would may might must shall should
not no each every all any both either neither one two which what when where who whom whose how why
there here their they them his her he she we our you your i me my into onto over under about after before
only also just more most less least such same other own up down out off very
""".split())
OPTION = re.compile(r"^\* \*\*([A-D])\.\*\* (.*?)(?=^\* \*\*[A-D]\.\*\*|^\s*$|\Z)", re.M | re.S)
KEY = re.compile(r"""assert\s+(q\w+)\s*==\s*["']([A-D])["']""")
ASSIGNMENTS = sorted(p.name for p in nbtools.SOLUTIONS.iterdir() if (p / f"{p.name}.py").exists())


@dataclass
class Question:
    assignment: str
    grade_id: str            # the answer cell, e.g. "q1_choice"
    key: str                 # the right letter
    options: dict            # letter -> option text (whitespace collapsed)
    cell_index: int          # index in the release of the markdown cell holding the options


def words(text):
    """Lower-case words of text with markdown emphasis, code marks, maths markup and punctuation dropped."""
    text = re.sub(r"\\[a-zA-Z]+", " ", text)             # \cdot, \times, \log ...
    text = re.sub(r"[*_`$\\{}^]", " ", text.lower())
    return re.findall(r"[a-z0-9]+(?:['’][a-z]+)?", text)


def ngrams(ws, n=NGRAM):
    return {tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)}


def distinguishing_phrases(question):
    """The key's runs of NGRAM words that no other option has, each with two or more content words."""
    others = set().union(*(ngrams(words(t)) for letter, t in question.options.items() if letter != question.key))
    return {g for g in ngrams(words(question.options[question.key]))
            if g not in others and sum(w not in FUNCTION_WORDS for w in g) >= 2}


def questions(assignment):
    """The A-D questions of one notebook, in order."""
    sol, rel = nbtools.solution_nb(assignment), nbtools.release_nb(assignment)
    found = []
    for c in sol.cells:
        meta = nbtools.nbgrader_meta(c)
        gid = meta.get("grade_id", "")
        if c.cell_type != "code" or not gid.startswith("test_") or "check_choice(" not in c.source:
            continue
        if "letters=" in nbtools.visible_part(c.source):     # another alphabet (03's R, W, K, V)
            continue
        keys = {m.group(2) for m in KEY.finditer(c.source)}
        assert len(keys) == 1, \
            f"{assignment}/{gid}: expected one `assert q.. == \"<letter>\"` in the hidden test, got {keys}"
        answer_id = gid[len("test_"):]
        answer_at = next(i for i, rc in enumerate(rel.cells) if nbtools.nbgrader_meta(rc).get("grade_id") == answer_id)
        at = max(i for i in range(answer_at)
                 if rel.cells[i].cell_type == "markdown" and "**A.**" in rel.cells[i].source)
        md = "\n".join(line[2:] if line.startswith("  ") else line for line in rel.cells[at].source.splitlines())
        options = {letter: " ".join(text.split()) for letter, text in OPTION.findall(md)}
        assert sorted(options) == list("ABCD"), f"{assignment}/{answer_id}: options {sorted(options)} in its markdown"
        found.append(Question(assignment, answer_id, keys.pop(), options, at))
    return found


def length(text):
    """An option's length as a reader sees it: the characters of its words, markup dropped."""
    return len(" ".join(words(text)))


def _is_longest(q):
    return length(q.options[q.key]) >= max(length(t) for t in q.options.values())


ALL = [q for a in ASSIGNMENTS for q in questions(a)]


# A-D questions per notebook: a question whose options or key stop parsing drops out of every check
# below, so the count is pinned (change it with the question).
CHOICE_QUESTIONS = {"01_self_attention": 2, "02_mamba": 3, "03_rwkv": 1, "04_jamba_moe": 1, "05_comparison": 0,
                    "06_open_llms": 2, "07_practice_lab": 0}


def test_every_notebook_pins_its_choice_questions():
    assert sorted(CHOICE_QUESTIONS) == ASSIGNMENTS, "give every notebook its number of A-D questions"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_course_has_choice_questions(assignment):
    found = [q.grade_id for q in ALL if q.assignment == assignment]
    assert len(found) == CHOICE_QUESTIONS.get(assignment), (
        f"{assignment}: {len(found)} A-D questions found ({found}), {CHOICE_QUESTIONS.get(assignment)} expected: "
        f"is the parsing of options or keys broken?")


def test_the_key_is_rarely_the_longest_option():
    """At most a third of the A-D questions have the key as their longest option."""
    longest = [f"{q.assignment}/{q.grade_id} ({q.key}: {length(q.options[q.key])} characters, others "
               f"{sorted(length(t) for k, t in q.options.items() if k != q.key)})" for q in ALL if _is_longest(q)]
    assert 3 * len(longest) <= len(ALL), (f"the key is the longest option in {len(longest)} of {len(ALL)} questions "
                                          f"(at most a third allowed): " + "; ".join(longest))


@pytest.mark.parametrize("q", ALL, ids=[f"{q.assignment}-{q.grade_id}" for q in ALL])
def test_no_key_phrase_is_written_above_its_question(q):
    """No distinguishing phrase of the key appears in the visible text before the question."""
    rel = nbtools.release_nb(q.assignment)
    before = ngrams(words("\n".join(c.source for c in rel.cells[:q.cell_index])))
    shown = sorted(" ".join(g) for g in distinguishing_phrases(q) & before)
    assert not shown, (f"{q.assignment}/{q.grade_id}: the key {q.key}'s distinguishing phrases are written above "
                       f"the question: {shown}")


def test_distinguishing_phrases_are_found():
    """The definition has teeth: every key has at least one distinguishing phrase to look for."""
    empty = [f"{q.assignment}/{q.grade_id}" for q in ALL if not distinguishing_phrases(q)]
    assert not empty, f"keys with no phrase of their own (too close to a distractor?): {empty}"


# Sentences that stated a question's key above it in words of their own (the audit of issue 23), by
# (notebook, answer cell); compared as words(), so markup and line breaks cannot hide one.
KEY_STATEMENTS = {
    ("02_mamba", "q2_choice"): [
        r"a model whose $\Delta, B, C$ do not depend on the input",
        r"the LTI one learns $\Delta, B, C$ as plain parameters",
        "The same block with Δ, B, C input-independent (learned constants)"],
    ("06_open_llms", "q2_kv_shrink_factor"): [
        "the cache shrinks by the factor in the heads column",
        "| model | parameters | active per token | H / H_kv |"],
}


def _release_text_before(assignment, answer_id):
    """The release's visible text (every cell's source) before the question of answer cell answer_id: the
    cells before the last markdown cell that precedes the answer cell (the question's own cell)."""
    rel = nbtools.release_nb(assignment)
    answer_at = next(i for i, c in enumerate(rel.cells) if nbtools.nbgrader_meta(c).get("grade_id") == answer_id)
    question_at = max(i for i in range(answer_at) if rel.cells[i].cell_type == "markdown")
    return "\n".join(c.source for c in rel.cells[:question_at])


@pytest.mark.parametrize("where", sorted(KEY_STATEMENTS), ids=["-".join(w) for w in sorted(KEY_STATEMENTS)])
def test_pinned_key_statements_stay_below_their_questions(where):
    before = " " + " ".join(words(_release_text_before(*where))) + " "
    back = [s for s in KEY_STATEMENTS[where] if " " + " ".join(words(s)) + " " in before]
    assert not back, f"{'/'.join(where)}: a sentence that states the key is above the question again: {back}"


def _constant_int(node):
    """The int a constant arithmetic expression (2**34 // (2 * 12)) evaluates to, else None."""
    if not all(isinstance(n, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.operator, ast.unaryop))
               for n in ast.walk(node)):
        return None
    value = eval(compile(ast.Expression(node), "<key>", "eval"), {"__builtins__": {}})
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def numeric_questions(assignment):
    """[(answer cell, {answer name: int key})] for the checkpoint questions answered with numbers: the ints the
    solution assigns in the answer cell, and those its hidden test compares an answer name with."""
    sol = nbtools.solution_nb(assignment)
    out = []
    for c in sol.cells:
        gid = nbtools.nbgrader_meta(c).get("grade_id", "")
        if c.cell_type != "code" or not re.fullmatch(r"test_q\d\w*", gid) or "check_choice(" in c.source:
            continue
        answer = nbtools.cell(sol, gid[len("test_"):])
        keys = {}
        for node in ast.walk(ast.parse(nbtools.strip_markers(answer.source))):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                value = _constant_int(node.value)
                if value is not None:
                    keys[node.targets[0].id] = value
        for node in ast.walk(ast.parse(nbtools.strip_markers(c.source))):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and isinstance(node.ops[0], ast.Eq):
                value = _constant_int(node.comparators[0])
                if value is not None and node.left.id.startswith("q"):
                    keys[node.left.id] = value
        if keys:
            out.append((gid[len("test_"):], keys))
    return out


NUMERIC = [(a, gid, keys) for a in ASSIGNMENTS for gid, keys in numeric_questions(a)]


def test_numeric_questions_are_found():
    """01-Q3, 03-Q2, 04-Q1, 04-Q3 and 06-Q2 are answered with numbers: the parsing finds their keys."""
    assert sorted((a, gid) for a, gid, _ in NUMERIC) == [
        ("01_self_attention", "q3_exponents"), ("03_rwkv", "q2_numbers"), ("04_jamba_moe", "q1_numbers"),
        ("04_jamba_moe", "q3_max_context"), ("06_open_llms", "q2_kv_shrink_factor")], NUMERIC


def _written(value):
    """Regexes for value as prose or code writes it: digits grouped by commas, spaces, thin spaces or '_'."""
    digits = str(value)
    groups = [digits[max(0, i - 3):i] for i in range(len(digits), 0, -3)][::-1]
    return [rf"(?<![\d.,_]){re.escape(sep.join(groups))}(?![\d_]|[.,]\d)" for sep in ("", ",", " ", "\u2009", "_")]


@pytest.mark.parametrize("assignment,answer_id,keys", NUMERIC, ids=[f"{a}-{g}" for a, g, _ in NUMERIC])
def test_no_numeric_key_is_written_above_its_question(assignment, answer_id, keys):
    before = _release_text_before(assignment, answer_id)
    for name, value in keys.items():
        v = re.escape(str(value))
        patterns = [rf"\b{name}\s*=\s*{v}\b"]
        if "ratio" in name or "factor" in name:      # a ratio's key, written as one (other ratios may share it)
            patterns += [rf"\bfactor of {v}\b(?![.,]\d)", rf"\bshrinks by {v}\b(?![.,]\d)",
                         rf"(?<![\d.]){v}\s*(?:×|x|times) (?:smaller|fewer|less|larger|more)\b"]
        if value >= 100:
            patterns += _written(value)
        shown = [m.group(0) for p in patterns for m in [re.search(p, before)] if m]
        assert not shown, f"{assignment}/{answer_id}: {name}'s key {value} is written above the question: {shown}"
