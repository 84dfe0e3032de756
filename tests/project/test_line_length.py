"""No line of a notebook source (solutions/<id>/<id>.py) is over 120 characters.

ruff cannot check it there (pyproject.toml exempts those files from E501, because of the header
lines below), so this test does. Exempt is only what cannot be wrapped: a cell header,
`# %% ...` (jupytext reads a cell's nbgrader metadata from that one line). Everything else wraps:
a docstring over several lines, adjacent string literals inside brackets, markdown text at word
boundaries (a bullet continues with two spaces); a table row or a lone image that cannot wrap is
kept short (a note under the table, a shorter alt text).
"""

import re

import pytest

from autograder import paths

LIMIT = 120
UNWRAPPABLE = re.compile(r"# %%")                             # a cell header


def too_long(text):
    """[(line number, length)] of the lines of `text` over LIMIT characters that could be wrapped."""
    return [(n, len(line)) for n, line in enumerate(text.splitlines(), 1)
            if len(line) > LIMIT and not UNWRAPPABLE.match(line)]


@pytest.mark.parametrize("assignment", paths.present_assignments())
def test_notebook_source_lines_fit_in_120_characters(assignment):
    source = paths.SOLUTIONS / assignment / f"{assignment}.py"
    long = too_long(source.read_text(encoding="utf-8"))
    assert not long, (f"{source.relative_to(paths.ROOT)}: {len(long)} lines over {LIMIT} characters "
                      f"(wrap them): " + ", ".join(f"line {n} ({k})" for n, k in long[:10]))


def test_the_rule_flags_every_long_line_but_a_cell_header():
    over = "x" * LIMIT
    flagged = [f"a = {over}", f"# {over}", f"# - {over}", f'"""{over}"""', f"    # {over}",
               f"# ![{over}](../../figs/a.png)", f"# | piece | {over} |"]
    kept = ["x" * LIMIT, f'# %% nbgrader={{"grade_id": "{over}"}}']
    assert [n for n, _ in too_long("\n".join(flagged + kept))] == list(range(1, len(flagged) + 1))
