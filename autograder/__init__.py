"""The course's grading tools: a thin layer over nbgrader (see __main__ for the verbs)."""

import sys

# jsonschema, which nbformat loads, imports rfc3987_syntax when it is installed, for the "iri"
# string format; no notebook or nbgrader schema uses that format, and the import compiles a
# grammar that costs ~2.5 s in every process (each command of this package, each grading worker,
# the hub's grading service). Keep it out of this package's processes (tests/basics/test_imports.py).
sys.modules.setdefault("rfc3987_syntax", None)
