"""One record, one pass: per graded submission the grader writes its result file once and
opens the gradebook once (scores, time and late penalty in one session); workers write no
result file; each test's description is captured when it is graded."""

import ast
import html

import nbformat
import pytest
from nbgrader import api as nbgrader_api

import nbtools
from autograder.grading import autograde, collect, gradebook, results, task
from autograder.reports import feedback

NB = "01_self_attention"
pytestmark = [pytest.mark.slow, pytest.mark.notebooks]


def test_one_result_write_and_one_gradebook_session_per_graded_submission(tmp_path, monkeypatch):
    rel = nbtools.release_nb(NB)
    subs = tmp_path / "subs"
    for student, answers in (("alice", nbtools.solution_answers(NB)), ("bob", {})):
        (subs / student / NB).mkdir(parents=True)
        nbformat.write(nbtools.submission(rel, answers), subs / student / NB / f"{NB}.ipynb")
    ws = tmp_path / "ws"
    assert collect.collect(subs, ws)[0] == 2
    autograde.prepare_assignments(ws, [NB])

    sessions, writes, phase = [], [], {"now": "grading"}
    opened = nbgrader_api.Gradebook.__init__

    def counting_init(self, *a, **kw):
        sessions.append(phase["now"])
        return opened(self, *a, **kw)

    monkeypatch.setattr(nbgrader_api.Gradebook, "__init__", counting_init)
    saved = results.save
    monkeypatch.setattr(results, "save", lambda ws_, r: writes.append((phase["now"], r.key)) or saved(ws_, r))
    recorded = gradebook.record

    def recording(ws_, r, cfg=None):
        phase["now"] = f"recording {r.key}"
        try:
            return recorded(ws_, r, cfg)
        finally:
            phase["now"] = "grading"

    monkeypatch.setattr(gradebook, "record", recording)
    ran = task.run
    monkeypatch.setattr(task, "run", lambda job: (phase.__setitem__("now", "worker"), ran(job))[1])

    records = autograde.autograde(ws, autograde.Settings(workers=1))   # one worker: all in this process

    keys = sorted(r.key for r in records)
    assert keys == [f"alice/{NB}", f"bob/{NB}"] and all(r.status == "graded" for r in records)
    assert sorted(k for _, k in writes) == keys, writes                  # one write each
    assert all(p == "grading" for p, _ in writes), writes                # by the batch, after recording
    assert not [p for p in sessions if p == "worker"], sessions          # a worker never opens the gradebook
    for k in keys:
        assert sessions.count(f"recording {k}") == 1, sessions           # one session per submission
    alice = results.load_one(ws, "alice", NB)
    sol = nbtools.solution_nb(NB)
    assert alice.tests
    for t in alice.tests:      # the docstring of the instructor's test cell, whitespace folded
        assert t.description == " ".join(ast.get_docstring(ast.parse(nbtools.cell(sol, t.grade_id).source)).split())
    page = feedback.render(alice)
    assert all(html.escape(t.description) in page for t in alice.tests)
