"""The grader's results live in one module (autograder.grading.results): one file per submission,
written atomically; export, feedback and status read them through it; a result is current
only for the file and the course it was graded against."""

import dataclasses
import json

from autograder import nbg
from autograder.grading import results, submission
from autograder.reports import export, feedback

NB = "01_self_attention"


def _record(student, status="graded", **extra):
    return results.Record(student, NB, status, tests=[results.TestResult("test_causal_mask", status == "graded")],
                          isolated=True, submission_sha256="a" * 64, course_sha256="c" * 64, **extra)


def test_save_and_load_round_trip(tmp_path):
    results.save(tmp_path, _record("bob"))
    results.save(tmp_path, _record("alice"))
    results.save(tmp_path, _record("alice", flags=["changed"]))      # saving again replaces
    loaded = results.load(tmp_path)
    assert list(loaded) == [f"alice/{NB}", f"bob/{NB}"]
    assert loaded[f"alice/{NB}"].flags == ["changed"]
    assert results.load_one(tmp_path, "bob", NB) == _record("bob")
    assert results.load_one(tmp_path, "nobody", NB) is None
    # atomic: no temporary file is left beside the results, and a reader never sees half a file
    assert sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "results").rglob("*") if p.is_file()) == \
        [f"results/alice/{NB}.json", f"results/bob/{NB}.json"]
    (tmp_path / "results" / "carol").mkdir()
    (tmp_path / "results" / "carol" / f"{NB}.json").write_text('{"student_id": "car')
    assert list(results.load(tmp_path)) == [f"alice/{NB}", f"bob/{NB}"]


def test_a_result_is_current_only_for_its_file_and_course():
    r = _record("alice")
    assert results.is_current(r, "a" * 64, "c" * 64)
    assert not results.is_current(r, "b" * 64, "c" * 64)       # resubmitted
    assert not results.is_current(r, "a" * 64, "d" * 64)       # a test cell changed
    assert not results.is_current(None, "a" * 64, "c" * 64)
    assert not results.is_current(dataclasses.replace(r, retry=True), "a" * 64, "c" * 64)   # the grader failed
    failed = results.failed("dana", NB, "not a valid notebook")
    assert failed.status == "failed" and not failed.retry


def test_a_file_of_the_older_layout_graded_but_never_recorded_is_graded_again(tmp_path):
    old = {**_record("erin").to_dict(), "recorded": False}
    results.path(tmp_path, "erin", NB).parent.mkdir(parents=True)
    results.path(tmp_path, "erin", NB).write_text(json.dumps(old))
    assert not results.is_current(results.load_one(tmp_path, "erin", NB), "a" * 64, "c" * 64)


def test_the_course_fingerprint_follows_the_course_files(tmp_path, monkeypatch):
    sol, rel = submission.truth_files(NB)
    before = submission.fingerprint(NB)
    assert before == submission.fingerprint(NB)
    for folder in ("solutions", "notebooks"):
        (tmp_path / folder / NB).mkdir(parents=True)
    (tmp_path / "solutions" / NB / sol.name).write_bytes(sol.read_bytes() + b" ")
    (tmp_path / "notebooks" / NB / rel.name).write_bytes(rel.read_bytes())
    monkeypatch.setattr(submission.paths, "SOLUTIONS", tmp_path / "solutions")
    monkeypatch.setattr(submission.paths, "NOTEBOOKS", tmp_path / "notebooks")
    assert submission.fingerprint(NB) != before


def test_export_and_feedback_read_the_results_module(tmp_path):
    nbg.api(tmp_path)          # a workspace: its gradebook, as collect/autograde make it
    results.save(tmp_path, _record("alice"))
    results.save(tmp_path, results.failed("broken", NB, "not a valid notebook file (NotJSONError: x)"))
    rows = {r["student_id"]: r for r in export.rows(tmp_path)}
    assert rows["broken"]["status"] == "failed" and rows["broken"]["reason"].startswith("not a valid notebook")
    assert rows["alice"]["status"] == "graded"
    pages = feedback.generate(tmp_path)
    assert sorted(p.parent.parent.name for p in pages) == ["alice", "broken"]
    assert "not a valid notebook" in (tmp_path / "feedback" / "broken" / NB / f"{NB}.html").read_text()
    assert not (tmp_path / "results.json").exists()
    json.loads(results.path(tmp_path, "alice", NB).read_text())
