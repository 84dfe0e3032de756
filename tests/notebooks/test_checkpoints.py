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

The letter spread (no letter keys more than 40 % of the questions) is checked in
test_release.py.
"""

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
