"""Answers that look alike: pairwise similarity of students' answer cells, exercise by exercise.

Each answer is fingerprinted with copydetect (winnowing of k-grams over the code after
tokenising it, with every variable, function and class name replaced by one letter: the MOSS
method, Schleimer, Wilkerson and Aiken, SIGMOD 2003), so renaming variables changes nothing. The
release notebook's stub of the exercise is fingerprinted too and its fingerprints are removed
from every answer: what the course gave everyone is never evidence. A pair's similarity is the
mean of the two shares of each answer's tokens that the other one covers.

This lists answers that *look alike*; it is no verdict. An answer too short to carry
MIN_FINGERPRINTS fingerprints once the stub is discounted (a one-letter checkpoint answer, an
untouched stub) is not compared.
"""

import io
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

import copydetect
import nbformat

from autograder import contract

NOISE, GUARANTEE = 25, 30        # copydetect's defaults: k-grams of 25 filtered characters, window 6
THRESHOLD = 0.8                  # a pair at or above this is listed
MIN_FINGERPRINTS = 8

log = logging.getLogger(__name__)


@dataclass
class Pair:
    exercise: str
    a: str
    b: str
    similarity: float
    share_a: float           # of a's tokens, the share b covers
    share_b: float
    code_a: str
    code_b: str


def _fingerprint(code, boilerplate=None):
    # copydetect reads the language from the name; the code comes from memory (fp=)
    return copydetect.CodeFingerprint("answer.py", NOISE, GUARANTEE - NOISE + 1, boilerplate=boilerplate,
                                      fp=io.StringIO(code))


def answers(submitted, assignment):
    """{exercise grade id: {student: answer source}} from WS/submitted/<student>/<a>/<a>.ipynb."""
    out = {}
    for path in sorted(Path(submitted).glob(f"*/{assignment}/{assignment}.ipynb")):
        student = path.parent.parent.name
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:     # not a notebook: the grader failed it already, with the reason
            continue
        for cell in nb.cells:
            if cell.get("cell_type") == "code" and contract.is_answer(cell):
                out.setdefault(contract.grade_id(cell), {})[student] = cell.source
    return out


def stubs(release_nb):
    """{exercise grade id: the release's code for it} (what every student started from)."""
    return {contract.grade_id(c): c.source for c in release_nb.cells
            if c.get("cell_type") == "code" and contract.is_answer(c)}


def pairs(by_student, stub="", exercise="", threshold=THRESHOLD):
    """Every pair of comparable answers with similarity >= threshold, most similar first."""
    boiler = list(_fingerprint(stub).hashes) if stub.strip() else None
    prints = {}
    for student, code in sorted(by_student.items()):
        try:
            fp = _fingerprint(code, boiler)
        except Exception as err:      # tokenising never fails on text, but a bad cell must not stop a report
            log.warning(f"{exercise}: {student}'s answer could not be fingerprinted: {err}")
            continue
        if len(fp.hashes) >= MIN_FINGERPRINTS:
            prints[student] = fp
    found = []
    for a, b in itertools.combinations(sorted(prints), 2):
        _, (sa, sb), _ = copydetect.compare_files(prints[a], prints[b])
        sim = (float(sa) + float(sb)) / 2
        if sim >= threshold:
            found.append(Pair(exercise, a, b, sim, float(sa), float(sb), by_student[a], by_student[b]))
    return sorted(found, key=lambda p: (-p.similarity, p.a, p.b))


def all_pairs(submitted, assignment, release_nb, threshold=THRESHOLD):
    """{exercise: [Pair]} for one assignment."""
    base = stubs(release_nb)
    return {ex: pairs(codes, base.get(ex, ""), ex, threshold)
            for ex, codes in answers(submitted, assignment).items()}


def same_code(found, at=0.999):
    """The groups of students whose answers are the same code once names are ignored (pairs at
    `at` or more, joined transitively), largest first: a page shows each group once."""
    parent = {}

    def root(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x
    for p in found:
        if p.similarity >= at:
            parent[root(p.a)] = root(p.b)
    groups = {}
    for x in list(parent):
        groups.setdefault(root(x), set()).add(x)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g))
