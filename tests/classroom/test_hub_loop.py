"""A term's loop on one server, without a browser, on the SQLite gradebook.

`hub --setup-only` makes the class (three students and an instructor from a roster: accounts,
the course folder, the exchange, the students' environment); the instructor releases
01_self_attention with the real command line; each student fetches and submits with nbgrader's
own commands run as their Linux account (what the Assignments tab's buttons call); student C
also runs code that tries to read A's submission, and plants a submission in A's name. The
instructor moves the due date between A's and B's submissions, collects, grades (jailed),
releases feedback, exports the Canvas CSV; A and B fetch their feedback. Last, nbgrader's own
autograde (its command and the formgrader's API call) must refuse to grade.

tests/classroom/test_hub.py runs the same loop through JupyterHub in a real browser, on PostgreSQL.
"""

import json
import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

import hub_helpers as hh
from autograder import contract, nbg, paths
from autograder.classroom import hub

A1 = hh.ASSIGNMENT
pytestmark = [pytest.mark.skipif(A1 not in paths.present_assignments(), reason=f"{A1} is not among the assignments"),
              pytest.mark.hub, pytest.mark.root, pytest.mark.notebooks, pytest.mark.slow]


@pytest.fixture(scope="module")
def term(tmp_path_factory, request):
    hh.require_hub()
    tmp = tmp_path_factory.mktemp("hubloop")
    k = hh.make_klass(tmp)
    repo = hh.RepositoryMode()
    started = time.monotonic()
    try:
        s = hub.HubSettings(roster=str(k.roster), prefix=str(k.prefix), envs=str(hh.ENVS), course_id=hh.COURSE_ID,
                            instructors_group=k.group, late_policy="per-day:10", setup_only=True)
        layout = hub.setup(s)
        yield _run_term(k, layout, tmp)
    finally:
        hh.say(request.config, f"test_hub_loop: the term took {time.monotonic() - started:.0f} s")
        hh.remove_klass(k)
        repo.restore()


def _run_term(k, layout, tmp):
    out = {"k": k, "layout": layout, "tmp": tmp}
    ws = str(k.course)
    hh.cli("release", A1, "--exchange", "--workspace", ws)
    env = {x: hh.env_of(layout.env, k.prefix, k.ids[x], "student") for x in "ABC"}
    home = {x: pwd.getpwnam(k.ids[x]).pw_dir for x in "ABCI"}
    fetched = {x: f"{home[x]}/{hh.COURSE_ID}/{A1}/{A1}.ipynb" for x in "ABC"}
    inbound = k.prefix / "exchange" / hh.COURSE_ID / "inbound"
    spy_targets = [inbound, fetched["A"], f"{home['A']}/.local/share/jupyter/nbgrader_cache/{hh.COURSE_ID}",
                   k.course / "gradebook.db", paths.SOLUTIONS / A1 / f"{A1}.py"]
    out["spy_targets"] = spy_targets
    # what a student's kernel imports: the edition's archlab, the students' environment
    r = hh.as_user(k.ids["A"], env["A"], "python", "-c",
                   "import archlab, sys; print(archlab.__file__); print(sys.prefix)")
    out["imports"] = r.stdout + r.stderr
    for x in "ABC":
        r = hh.as_user(k.ids[x], env[x], "nbgrader", "fetch_assignment", A1)
        assert r.returncode == 0 and os.path.exists(fetched[x]), f"{x} could not fetch {A1}:\n{r.stdout}{r.stderr}"
        # what the student's JupyterLab saves: their answers, in their own file
        nbformat.write(hh.filled(x, spy_paths=spy_targets), fetched[x])
        pw = pwd.getpwnam(k.ids[x])
        os.chown(fetched[x], pw.pw_uid, pw.pw_gid)
        r = hh.as_user(k.ids[x], env[x], "nbgrader", "submit", A1)
        assert r.returncode == 0, f"{x} could not submit:\n{r.stdout}{r.stderr}"
        time.sleep(1.2)   # distinct submission times: the due date goes between A's and B's
    # C runs the spying code as C, in the students' environment (what C's kernel would do)
    r = hh.as_user(k.ids["C"], env["C"], "python", "-c", hh.spy_code(spy_targets))
    out["spy_live"] = r.stdout + r.stderr
    out["c_lists_inbound"] = hh.as_user(k.ids["C"], env["C"], "ls", str(inbound))
    # C plants a submission in A's name, later than A's
    forged = inbound / f"{k.ids['A']}+{A1}+2999-01-01 00:00:00.000000 UTC+forged"
    plant = (f"import os; os.mkdir({str(forged)!r}); "
             f"open({str(forged / (A1 + '.ipynb'))!r}, 'w').write(open({fetched['C']!r}).read())")
    out["plant"] = hh.as_user(k.ids["C"], env["C"], "python", "-c", plant)
    out["forged"] = forged
    # and a later submission of C's own whose notebook is a link to A's (root would follow it)
    linked = inbound / f"{k.ids['C']}+{A1}+2999-01-01 00:00:00.000000 UTC+linked"
    link = (f"import os; os.mkdir({str(linked)!r}); "
            f"os.symlink({fetched['A']!r}, {str(linked / (A1 + '.ipynb'))!r})")
    out["link"] = hh.as_user(k.ids["C"], env["C"], "python", "-c", link)

    times = {x: _submitted_at(inbound, k.ids[x]) for x in "AB"}
    due = times["A"] + (times["B"] - times["A"]) / 2
    out["times"], out["due"] = times, due
    hh.cli("release", A1, "--exchange", "--due", due.isoformat() + "+00:00", "--workspace", ws)
    out["collect"] = hh.cli("collect", A1, "--exchange", "--workspace", ws)
    hh.cli("autograde", "--workspace", ws)
    hh.cli("feedback", "--release", "--workspace", ws)
    hh.cli("export", "--out", str(tmp / "grades.csv"), "--workspace", ws)
    hh.cli("export", "--format", "canvas", "--out", str(tmp / "canvas.csv"), "--workspace", ws)
    # the instructor's report, in the course folder: who may read it
    hh.cli("report", "--workspace", ws)
    page = k.course / "report" / f"{A1}.html"
    plain = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    out["report_read"] = {x: hh.as_user(k.ids[x], plain, "cat", str(page)) for x in "CI"}
    out["report_listed"] = hh.as_user(k.ids["C"], plain, "ls", str(k.course / "report"))
    out["fetch_feedback"] = {}
    for x in "AB":
        r = hh.as_user(k.ids[x], env[x], "nbgrader", "fetch_feedback", A1)
        assert r.returncode == 0, f"{x} could not fetch feedback:\n{r.stdout}{r.stderr}"
        out["fetch_feedback"][x] = list(Path(home[x]).glob(f"{hh.COURSE_ID}/{A1}/feedback/*/{A1}.html"))
    return out


def _submitted_at(inbound, student):
    from nbgrader.utils import parse_utc
    [folder] = [p for p in inbound.iterdir() if p.name.startswith(student + "+") and not p.name.endswith("forged")]
    return parse_utc((folder / "timestamp.txt").read_text())


def _grades(term):
    import csv
    with open(term["tmp"] / "grades.csv", newline="") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def test_students_cannot_read_each_others_work_or_the_answers(term):
    """C's code, run as C, reads nothing of A's, the course folder or the repository."""
    result = hh.spy_result(term["spy_live"])
    assert set(result) == {str(t) for t in term["spy_targets"]}
    leaked = {p: v for p, v in result.items() if not (isinstance(v, str) and v.startswith("blocked"))}
    assert not leaked, f"C read: {leaked}"
    assert term["c_lists_inbound"].returncode != 0, "C can list the exchange's inbound folder"


def test_students_run_the_edition_not_the_repository(term):
    """A student's Python imports archlab from the student edition, in the students' environment."""
    archlab_file, prefix = term["imports"].split()[:2]
    assert archlab_file.startswith(str(term["layout"].edition) + "/"), term["imports"]
    assert prefix == str(term["layout"].env) and str(paths.ROOT) not in term["imports"], term["imports"]


def test_a_submission_in_someone_elses_name_is_refused(term):
    """C could plant a folder in A's name (nbgrader's inbound allows it); collect refuses it."""
    assert term["plant"].returncode == 0, term["plant"].stderr
    k = term["k"]
    assert f"refused a submission in {k.ids['A']}'s name owned by {k.ids['C']}" in term["collect"], term["collect"]
    collected = nbformat.read(k.course / "submitted" / k.ids["A"] / A1 / f"{A1}.ipynb", as_version=4)
    assert hh.SPY_MARK not in json.dumps(collected), "C's planted notebook was collected as A's"


def test_a_link_to_someone_elses_notebook_is_refused(term):
    """C's later submission links to A's notebook: collect refuses it and keeps C's own."""
    assert term["link"].returncode == 0, term["link"].stderr
    k = term["k"]
    assert f"{k.ids['C']}+{A1}+2999-01-01 00:00:00.000000 UTC+linked: its {A1}.ipynb is a link" in term["collect"]
    collected = (k.course / "submitted" / k.ids["C"] / A1 / f"{A1}.ipynb").read_text()
    assert hh.SPY_MARK in collected, "C's own submission was not collected"


def test_a_full_marks_b_loses_points_c_flagged(term):
    k, rows = term["k"], _grades(term)
    full = hh.test_points()
    a, b, c = rows[k.ids["A"]], rows[k.ids["B"]], rows[k.ids["C"]]
    assert a["status"] in ("graded", "needs manual grading"), a
    assert float(a["autograded_score"]) == float(a["autograded_max"]) == full
    assert b["status"] in ("graded", "needs manual grading"), b
    assert float(b["autograded_score"]) < full
    assert "reaches for files outside its folder" in c["flags"], c
    assert a["isolated"] == "True", "graded without the jail"


def test_the_spy_reads_nothing_while_graded_either(term):
    """In the grader's jail the exchange, homes and the course do not exist at all."""
    k = term["k"]
    result = hh.spy_result((k.course / "autograded" / k.ids["C"] / A1 / f"{A1}.ipynb").read_text())
    assert set(result) == {str(t) for t in term["spy_targets"]}
    assert all(str(v) == "blocked: FileNotFoundError" for v in result.values()), result


def test_late_policy_in_the_export(term):
    """Due between A's and B's submissions, 10 % per day started: B pays 10 % of its score."""
    k, rows = term["k"], _grades(term)
    a, b = rows[k.ids["A"]], rows[k.ids["B"]]
    assert float(a["seconds_late"]) == 0 and float(a["late_penalty"]) == 0
    late_s = (term["times"]["B"] - term["due"]).total_seconds()
    assert float(b["seconds_late"]) == pytest.approx(late_s, abs=1e-3)
    with Gradebook(nbg.config(k.course).CourseDirectory.db_url) as gb:
        raw = gb.find_submission(A1, k.ids["B"]).score
    assert raw > 0, "B scored nothing: the penalty would be 0 whatever the policy"
    assert float(b["late_penalty"]) == pytest.approx(0.1 * raw)
    assert float(b["score"]) == pytest.approx(raw - 0.1 * raw)


def test_feedback_fetched_shows_results_and_no_hidden_test(term):
    hidden = hh.hidden_test_lines()
    assert hidden, "no hidden tests found to look for"
    for x, n_failed in (("A", 0), ("B", None)):
        pages = term["fetch_feedback"][x]
        assert len(pages) == 1, f"{x}: feedback pages {pages}"
        text = pages[0].read_text()
        assert "passed" in text and term["k"].ids[x] in text
        fails = text.count("not passed")
        assert fails == 0 if n_failed == 0 else fails > 0, f"{x}: {fails} tests not passed"
        assert not contract.shown(hidden, text), f"{x}'s feedback shows hidden test lines"
        assert "BEGIN HIDDEN TESTS" not in text


def test_canvas_csv_has_a_row_per_student_and_says_why(term):
    k = term["k"]
    header, rows = hh.canvas_rows(term["tmp"] / "canvas.csv")
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] and A1 in header
    students = [m for m in k.members if m.role == "student"]
    assert sorted(rows) == sorted(m.lms_id for m in students)
    assert float(rows[students[0].lms_id][A1]) == hh.test_points()
    assert "flagged for review: reaches for files outside its folder" in rows[students[2].lms_id]["Notes"]
    assert "late" in rows[students[1].lms_id]["Notes"]


def test_nbgrader_own_autograde_cannot_grade(term):
    """`nbgrader autograde` in the course folder and the formgrader's autograde call refuse,
    before touching the executed notebook or the gradebook."""
    k = term["k"]
    executed = k.course / "autograded" / k.ids["A"] / A1 / f"{A1}.ipynb"
    before = executed.read_bytes()
    db_url = nbg.config(k.course).CourseDirectory.db_url
    with Gradebook(db_url) as gb:
        score = gb.find_submission(A1, k.ids["A"]).score
    r = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", A1, "--force"], cwd=k.course,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "python -m autograder autograde" in r.stdout + r.stderr, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "nbgrader", "generate_feedback", A1, "--force"], cwd=k.course,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "python -m autograder feedback" in r.stdout + r.stderr, r.stdout + r.stderr
    # the formgrader's autograde button calls NbGraderAPI.autograde with the course's config
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader
    cfg = PyFileConfigLoader("nbgrader_config.py", str(k.course)).load_config()
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    result = api.autograde(A1, k.ids["A"])
    assert not result["success"] and "python -m autograder autograde" in result["log"] + result.get("error", "")
    assert executed.read_bytes() == before
    with Gradebook(db_url) as gb:
        assert gb.find_submission(A1, k.ids["A"]).score == score


def test_the_report_is_for_instructors_only(term):
    """The instructor's report (autograder report, in the course folder) shows every student's
    answers: a student's account can neither read nor list it; an instructor's can read it."""
    read = term["report_read"]
    assert read["C"].returncode != 0 and "Permission denied" in read["C"].stderr, read["C"]
    assert term["report_listed"].returncode != 0, "a student can list the report's folder"
    assert read["I"].returncode == 0 and "what the class got wrong" in read["I"].stdout, read["I"].stderr[-500:]
