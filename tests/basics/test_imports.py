"""What importing the package costs, and that the shortcut it takes changes nothing it needs."""

import subprocess
import sys

import nbformat
import pytest


def test_the_package_keeps_the_iri_grammar_out_and_notebooks_still_validate():
    code = ("import time; t = time.perf_counter(); import autograder, nbformat, sys; "
            "print(sys.modules.get('rfc3987_syntax') is None, round(time.perf_counter() - t, 2))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "True", "rfc3987_syntax was imported after all"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.validate(nb)
    nb.cells[0]["outputs"] = [{"output_type": "no such type"}]
    with pytest.raises(nbformat.ValidationError):
        nbformat.validate(nb)
