"""Collecting submissions: zips per student, nbgrader's exchange layout, plain folders; hostile
archives cannot write outside the workspace and bad entries are reported, not dropped."""

import os
import time
import zipfile

from autograder.grading import collect

NB = "01_self_attention"


def test_zip_per_student(tmp_path):
    src, ws = tmp_path / "in", tmp_path / "ws"
    src.mkdir()
    with zipfile.ZipFile(src / "dana.zip", "w") as z:
        z.writestr(f"whatever/{NB}.ipynb", "{}")
        z.writestr("../../escape.ipynb", "x")                 # zip-slip attempt: not a course notebook
        z.writestr(f"../../{NB}.ipynb", '{"x": 1}')           # only the file name is used
    (src / "broken.zip").write_bytes(b"not a zip")
    count, problems = collect.collect(src, ws)
    assert count == 2      # the two entries named like the notebook, the later one wins
    assert (ws / "submitted" / "dana" / NB / f"{NB}.ipynb").read_text() == '{"x": 1}'
    assert not (tmp_path / "escape.ipynb").exists() and not list(tmp_path.glob("*.ipynb"))
    assert [(s, why.split(" (")[0]) for s, _, why in problems] == [("broken", "not a zip file")]


def test_exchange_layout(tmp_path):
    inbound = tmp_path / "exchange" / "course" / "inbound"
    d = inbound / f"erin+{NB}+2026-11-29 10:00:00.000000 UTC"
    d.mkdir(parents=True)
    (d / f"{NB}.ipynb").write_text("{}")
    # nbgrader's submit is still writing it (its last step makes the folder 0777): not collected yet
    count, problems = collect.collect(tmp_path / "exchange", tmp_path / "ws")
    assert count == 0 and "still being written" in problems[0][2]
    os.chmod(d, 0o777)
    count, problems = collect.collect(tmp_path / "exchange", tmp_path / "ws")
    assert count == 1 and not problems
    assert (tmp_path / "ws" / "submitted" / "erin" / NB / f"{NB}.ipynb").exists()
    # a folder copied in by other means, a minute old, is complete too
    e = inbound / f"finn+{NB}+2026-11-29 10:00:00.000000 UTC"
    e.mkdir()
    (e / f"{NB}.ipynb").write_text("{}")
    os.utime(e, (time.time() - 120, time.time() - 120))
    assert collect.collect(tmp_path / "exchange", tmp_path / "ws") == (2, [])


def test_plain_folders_and_bad_student_ids(tmp_path):
    src = tmp_path / "in"
    (src / "frank" / NB).mkdir(parents=True)
    (src / "frank" / NB / f"{NB}.ipynb").write_text("{}")
    (src / "-rf").mkdir()
    (src / "-rf" / f"{NB}.ipynb").write_text("{}")
    count, problems = collect.collect(src, tmp_path / "ws")
    assert count == 1
    assert (tmp_path / "ws" / "submitted" / "frank" / NB / f"{NB}.ipynb").exists()
    assert problems and problems[0][0] == "-rf" and "student id" in problems[0][2]
