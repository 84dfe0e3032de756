"""`python -m autograder execute` times every notebook cold (its build/<id>_* caches moved
aside, as in a student's first run and in every graded kernel) and warm, and puts the caches
that were there back afterwards. Papermill is replaced by a fake notebook run here: what is
checked is which caches each run can see."""

from autograder import paths
from autograder.course import execute

NB = "02_mamba"


def test_cold_run_sees_no_cache_warm_run_sees_the_cold_runs_and_old_caches_come_back(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "BUILD", tmp_path)
    (tmp_path / f"{NB}_copy_full.pt").write_text("old full-size checkpoint")
    (tmp_path / f"{NB}_copy_quick.pt").write_text("old quick checkpoint")
    (tmp_path / "03_rwkv_other.pt").write_text("another notebook's")
    seen = []

    def fake_run(assignment, out_dir=None, source=None, **parameters):
        seen.append(sorted(p.name for p in paths.course_caches(assignment)))
        (tmp_path / f"{NB}_copy_quick.pt").write_text("new quick checkpoint")   # the notebook saves its cache
        return tmp_path / "out.ipynb", 1.0

    monkeypatch.setattr(execute, "execute", fake_run)
    seconds = execute.cold_and_warm(NB, QUICK=True)
    assert seconds == {"cold": 1.0, "warm": 1.0}
    assert seen == [[], [f"{NB}_copy_quick.pt"]]
    assert (tmp_path / f"{NB}_copy_full.pt").read_text() == "old full-size checkpoint"
    assert (tmp_path / f"{NB}_copy_quick.pt").read_text() == "new quick checkpoint"
    assert (tmp_path / "03_rwkv_other.pt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{NB}_copy_full.pt", f"{NB}_copy_quick.pt", "03_rwkv_other.pt"])   # nothing left aside


def test_caches_come_back_when_the_run_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "BUILD", tmp_path)
    (tmp_path / f"{NB}_copy_quick.pt").write_text("old")

    def failing_run(assignment, out_dir=None, source=None, **parameters):
        raise RuntimeError("a cell failed")

    monkeypatch.setattr(execute, "execute", failing_run)
    try:
        execute.cold_and_warm(NB)
    except RuntimeError:
        pass
    assert (tmp_path / f"{NB}_copy_quick.pt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == [f"{NB}_copy_quick.pt"]


def test_caches_left_aside_by_a_killed_run_come_back(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "BUILD", tmp_path)
    left = tmp_path / f".cold-{NB}-abc"
    left.mkdir()
    (left / f"{NB}_copy_full.pt").write_text("old")
    seen = []
    monkeypatch.setattr(execute, "execute", lambda a, out_dir=None, source=None, **p: (
        seen.append(sorted(x.name for x in tmp_path.iterdir())), (None, 1.0))[1])
    execute.cold_and_warm(NB, warm=False)
    assert (tmp_path / f"{NB}_copy_full.pt").read_text() == "old"
    assert not list(tmp_path.glob(".cold-*abc"))
