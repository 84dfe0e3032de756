"""A term on one server, in real browsers: JupyterHub from the one command, a PostgreSQL gradebook.

The class is three students and one instructor from a roster. `python -m autograder hub` starts
JupyterHub (PAM accounts, LocalProcessSpawner, configurable-http-proxy) with a gradebook on a
private PostgreSQL server that the instructor's account runs under build/. In Debian's Chromium
(Playwright), each student logs in, fetches 01_self_attention in the Assignments tab, fills the
answers (through the Jupyter contents API, as JupyterLab saves them) and presses Submit: A the
solution, B wrong answers, C code that tries to read A's submission. The instructor collects,
grades (jailed), releases feedback and exports the Canvas CSV with the real command line; A and
B fetch their feedback in the Assignments tab and open it. The instructor's Formgrader refuses
to autograde. The test prints its wall time.

tests/classroom/test_hub_loop.py runs the same loop without a browser on SQLite, with the checks that do
not need one (late policy, forged submissions, nbgrader's own autograde command).
"""

import csv
import datetime
import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

import browser_helpers as bh
import hub_helpers as hh
import nbtools
from autograder import contract, nbg, paths
from autograder.classroom import hub, status_page, studentenv
from autograder.grading import results

A1 = hh.ASSIGNMENT
SHOTS = paths.BUILD / "hub"
pytestmark = [pytest.mark.skipif(A1 not in paths.present_assignments(), reason=f"{A1} is not among the assignments"),
              pytest.mark.hub, pytest.mark.browser, pytest.mark.root, pytest.mark.notebooks, pytest.mark.slow]


@pytest.fixture(scope="module")
def course(tmp_path_factory, request):
    hh.require_hub(postgres=True)
    bh.require_browser("the hub's browser test")
    tmp = tmp_path_factory.mktemp("hub")
    k = hh.make_klass(tmp)
    repo = hh.RepositoryMode()
    t0 = time.monotonic()
    studentenv.environment(hh.ENVS)           # cached; built once per set of pins
    hh.say(request.config, f"test_hub: students' environment ready in {time.monotonic() - t0:.0f} s")
    pg, proc, log = None, None, None
    try:
        # the instructor's account runs the private PostgreSQL server, so it exists first
        instructor = [m for m in k.members if m.role == "instructor"]
        hub.ensure_accounts(instructor, k.group, k.prefix / "edition", k.prefix / "hub" / "initial-passwords.csv")
        hub.close_repository(k.group)
        paths.BUILD.mkdir(exist_ok=True)
        pg = hh.PrivatePostgres(k.ids["I"], paths.BUILD / f"pg-{k.tag}").start()
        if pg.moved:
            hh.say(request.config, f"test_hub: the instructor's account cannot reach {paths.BUILD}; "
                                   f"PostgreSQL runs in {pg.folder}")
        port = hub.free_port()
        log = open(tmp / "hub.log", "w")
        cmd = [sys.executable, "-m", "autograder", "hub", "--roster", str(k.roster), "--port", str(port),
               "--db-url", pg.url, "--prefix", str(k.prefix), "--envs", str(hh.ENVS), "--course-id", hh.COURSE_ID,
               "--instructors-group", k.group, "--late-policy", "per-day:10"]
        proc = subprocess.Popen(cmd, cwd=paths.ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        t_hub = time.monotonic()
        _wait_for_hub(base, proc, tmp / "hub.log")
        start_s = time.monotonic() - t_hub
        with open(k.prefix / "hub" / "initial-passwords.csv", newline="") as f:
            passwords = {r["id"]: r["initial_password"] for r in csv.DictReader(f)}
        yield {"k": k, "base": base, "pg": pg, "passwords": passwords, "tmp": tmp, "log": tmp / "hub.log",
               "start_s": start_s}
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)    # JupyterHub stops every user's server and the proxy
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if log is not None:
            log.close()
        if pg is not None:
            pg.stop()
        hh.remove_klass(k)
        repo.restore()


def _wait_for_hub(base, proc, log, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the hub exited with {proc.returncode}:\n{Path(log).read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(base + "/hub/api", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(1)
    raise AssertionError(f"the hub did not answer within {timeout} s:\n{Path(log).read_text()[-4000:]}")


# ---------------------------------------------------------------------------------------------
# what a person does in the browser
# ---------------------------------------------------------------------------------------------
def login(page, base, user, password):
    page.goto(f"{base}/hub/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.locator("input[type=submit], button[type=submit]").first.click()
    page.wait_for_url(re.compile(rf"/user/{re.escape(user)}/lab"), timeout=240_000)
    page.wait_for_selector(".lm-MenuBar-itemLabel", timeout=240_000)


def open_assignments(page):
    """Nbgrader › Assignment List: the Assignments tab."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Nbgrader$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Assignment List$")).click()
    page.wait_for_selector("#released_assignments_list", timeout=60_000)


def in_list(page, which, assignment):
    return page.locator(f"#{which}_assignments_list .list_item", has_text=assignment)


def click_in_list(page, which, assignment, label, then_in=None, timeout=120):
    item = in_list(page, which, assignment).first
    item.wait_for(timeout=timeout * 1000)
    item.locator("button", has_text=re.compile(rf"^\s*{label}\s*$")).first.click()
    if then_in:
        in_list(page, then_in, assignment).first.wait_for(timeout=timeout * 1000)


def save_notebook(page, base, user, path, nb):
    """PUT the notebook through the user's contents API, as JupyterLab saves it."""
    url = f"{base}/user/{user}/api/contents/{path}"
    status = page.evaluate("""async ([url, content]) => {
        const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || "";
        const r = await fetch(url, {method: "PUT", credentials: "same-origin",
            headers: {"Content-Type": "application/json", "X-XSRFToken": decodeURIComponent(xsrf)},
            body: JSON.stringify({type: "notebook", format: "json", content})});
        return r.status; }""", [url, json.loads(nbformat.writes(nb))])
    assert status in (200, 201), f"saving {path} for {user} answered {status}"


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_a_term_in_real_browsers(course, request):
    from playwright.sync_api import sync_playwright
    started = time.monotonic()
    k, base, pw = course["k"], course["base"], course["passwords"]
    ws = str(k.course)
    due = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    hh.cli("release", A1, "--exchange", "--due", due.isoformat(), "--workspace", ws)
    hh.cli("on-submit", A1, "--budget", "3/60m", "--workspace", ws)     # the hub's grading service grades it
    home = {x: Path(pwd.getpwnam(k.ids[x]).pw_dir) for x in "ABCI"}
    rel = f"{hh.COURSE_ID}/{A1}/{A1}.ipynb"
    spy_targets = [k.prefix / "exchange" / hh.COURSE_ID / "inbound", home["A"] / rel, k.course / "nbgrader_config.py",
                   paths.SOLUTIONS / A1 / f"{A1}.py"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=bh.CHROMIUM, headless=True, args=bh.CHROMIUM_ARGS)
        pages, texts = {}, {}
        try:
            for x in "ABC":
                user = k.ids[x]
                ctx = browser.new_context(viewport={"width": 1400, "height": 900})
                ctx.set_default_timeout(60_000)
                page = pages[x] = ctx.new_page()
                login(page, base, user, pw[user])
                # a student's JupyterLab opens on the Assignments tab and asks nothing about Jupyter news
                page.wait_for_selector("#released_assignments_list", timeout=120_000)
                page.wait_for_timeout(2000)        # the news question, where it is on, comes a moment later
                assert "Jupyter news" not in page.inner_text("body"), "JupyterLab asks about Jupyter news"
                if x == "A":
                    shot(page, "first_login_A")
                open_assignments(page)
                click_in_list(page, "released", A1, "Fetch", then_in="fetched")
                assert (home[x] / rel).exists(), f"{x}: the fetched notebook is not in the home folder"
                save_notebook(page, base, user, rel, hh.filled(x, spy_paths=spy_targets))
                click_in_list(page, "fetched", A1, "Submit", then_in="submitted")
                clicked = time.time()
                shot(page, f"submitted_{x}")
                if x in "AB":
                    texts[x] = _graded_on_submit(page, base, home[x], k, x, clicked, request)
            # C's code, run as C in the students' environment, reads nothing of A's or the course's
            spy = hh.as_user(k.ids["C"], hh.env_of(_env(), k.prefix, k.ids["C"], "student"), "python", "-c",
                             hh.spy_code(spy_targets))
            result = hh.spy_result(spy.stdout + spy.stderr)
            assert all(str(v).startswith("blocked") for v in result.values()), f"C read: {result}"

            text = texts["B"]
            for gid, w in hh.b_wrong(A1).items():
                if w.kind == "visible" and not nbtools.built_on(A1).get(gid):
                    assert w.visible.lower() in text.lower(), f"B's page does not name {gid}'s mistake"
            record = results.load_one(ws, k.ids["B"], A1)
            for t in record.tests:       # hidden checks as counts: how many pass, never their message
                if not t.passed and t.hidden:
                    count = rf"({t.hidden_passed} of {t.hidden} pass|{t.hidden}, not run yet)"
                    row = rf"{t.grade_id}\t(?:(?!\ntest_).)*?{count}"        # within its own row
                    assert re.search(row, text, re.S), f"B's page gives no count of {t.grade_id}'s hidden checks"
                if not t.passed and t.failed_in == contract.HIDDEN:
                    assert t.message.split(": ", 1)[-1][:60] not in text, f"B sees {t.grade_id}'s hidden message"

            # the instructor, as root in the repository, on the PostgreSQL gradebook: the batch after
            # the deadline grades nothing the service graded (once it has graded C's too: the test
            # waited for A's and B's only)
            hh.wait_for_feedback(k.prefix / "exchange" / hh.COURSE_ID, k.ids["C"], A1, timeout=300)
            collected = hh.cli("collect", A1, "--exchange", "--workspace", ws)
            assert "collected 3 submission(s)" in collected, collected
            batch = hh.cli("autograde", "--workspace", ws)
            assert "graded 0 submission(s)" in batch and "3 already had a current result" in batch, batch
            hh.cli("feedback", "--release", "--workspace", ws)
            out = course["tmp"] / "canvas.csv"
            hh.cli("export", "--format", "canvas", "--out", str(out), "--workspace", ws)
            hh.cli("export", "--out", str(course["tmp"] / "grades.csv"), "--workspace", ws)

            hidden = hh.hidden_test_lines()
            for x in "AB":
                page = pages[x]
                page.goto(f"{base}/user/{k.ids[x]}/lab")      # it shows the feedback page opened above
                page.wait_for_selector(".lm-MenuBar-itemLabel")
                open_assignments(page)
                click_in_list(page, "submitted", A1, "Fetch Feedback")
                def full(x=x):      # the released page replaces the counts-only one fetched before
                    found = list(home[x].glob(f"{hh.COURSE_ID}/{A1}/feedback/*/{A1}.html"))
                    return found if found and "Until the deadline" not in found[0].read_text() else None
                bh.wait_for(full, 60, f"{x}'s full feedback, fetched again")
                fb = full()
                page.goto(f"{base}/user/{k.ids[x]}/files/{fb[0].relative_to(home[x]).as_posix()}")
                text = page.inner_text("body")
                shot(page, f"feedback_{x}")
                assert k.ids[x] in text and "passed" in text, text[:500]
                assert ("not passed" in text) == (x == "B"), f"{x}: {text[:2000]}"
                assert not contract.shown(hidden, text), f"{x} sees hidden test lines"

            # the instructor's Formgrader: its autograde button is turned off, with the way to grade
            executed = k.course / "autograded" / k.ids["A"] / A1 / f"{A1}.ipynb"
            before = executed.read_bytes()
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            ctx.set_default_timeout(60_000)
            page = ctx.new_page()
            login(page, base, k.ids["I"], pw[k.ids["I"]])
            page.goto(f"{base}/user/{k.ids['I']}/formgrader/manage_submissions/{A1}")
            row = page.locator("table tbody tr", has_text=k.ids["A"]).first
            row.wait_for(timeout=120_000)
            row.locator("td.autograde a").click()
            modal = page.locator("#error-modal")
            modal.wait_for(timeout=120_000)
            shot(page, "formgrader_autograde")
            assert "python -m autograder autograde" in modal.inner_text(), modal.inner_text()[:2000]
            assert executed.read_bytes() == before, "the Formgrader touched the executed notebook"
            # a student has no Formgrader at all
            assert pages["A"].goto(f"{base}/user/{k.ids['A']}/formgrader").status == 404
            # the grading service's queue as a hub page: the instructor reads it, a student is refused
            page.goto(f"{base}/services/{status_page.NAME}/")
            page.wait_for_selector("#status")
            live = page.inner_text("#status")
            shot(page, "grading_status")
            assert "graded in the last hour" in live and f"on submit: {A1}" in live, live
            refused = pages["A"].goto(f"{base}/services/{status_page.NAME}/")
            assert refused.status == 403, (refused.status, pages["A"].inner_text("body")[:500])
        finally:
            browser.close()

    # grades: A full automatic marks, B loses points, C flagged; on the PostgreSQL gradebook
    with open(course["tmp"] / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    full = hh.test_points()
    assert float(rows[k.ids["A"]]["autograded_score"]) == full
    assert float(rows[k.ids["B"]]["autograded_score"]) < full
    assert "reaches for files outside its folder" in rows[k.ids["C"]]["flags"]
    assert nbg.config(k.course).CourseDirectory.db_url.startswith("postgresql")
    with Gradebook(course["pg"].url) as gb:
        assert gb.find_submission(A1, k.ids["A"]).score == full
    header, canvas = hh.canvas_rows(course["tmp"] / "canvas.csv")
    students = [m for m in k.members if m.role == "student"]
    assert sorted(canvas) == sorted(m.lms_id for m in students)
    assert "flagged for review" in canvas[students[2].lms_id]["Notes"]
    hh.say(request.config, f"test_hub: the term in real browsers took {time.monotonic() - started:.0f} s "
                           f"(the hub's start before it: {course['start_s']:.0f} s)")


def _graded_on_submit(page, base, home, k, x, clicked, request):
    """Graded on submit: x's feedback is in the exchange within seconds of Submit; x presses Fetch
    Feedback and opens it, all within 60 s of pressing Submit (recorded). The page says the rule,
    gives hidden checks as counts only and shows no hidden test line."""
    seconds = hh.wait_for_feedback(k.prefix / "exchange" / hh.COURSE_ID, k.ids[x], A1, timeout=300)
    text = _fetch_and_open(page, base, home, k.ids[x], f"on_submit_{x}")
    opened = time.time() - clicked
    hh.say(request.config, f"test_hub: {x}'s feedback was in the exchange {seconds:.1f} s after Submit, "
                           f"fetched and open {opened:.1f} s after Submit")
    assert opened < 60, f"{x}'s feedback was open {opened:.0f} s after Submit"
    assert "hidden checks" in text and "Until the deadline" in text, text[:1500]
    assert ("not passed" in text) == (x == "B"), f"{x}: {text[:2000]}"
    assert not contract.shown(hh.hidden_test_lines(), text), f"{x} sees hidden test lines"
    return text


def _fetch_and_open(page, base, home, user, name):
    """Fetch Feedback in the Assignments tab, then the page it fetched, as the student reads it."""
    page.goto(f"{base}/user/{user}/lab")
    page.wait_for_selector(".lm-MenuBar-itemLabel")
    open_assignments(page)
    click_in_list(page, "submitted", A1, "Fetch Feedback")
    bh.wait_for(lambda: list(home.glob(f"{hh.COURSE_ID}/{A1}/feedback/*/{A1}.html")), 60, f"{user}'s fetched feedback")
    fb = list(home.glob(f"{hh.COURSE_ID}/{A1}/feedback/*/{A1}.html"))
    page.goto(f"{base}/user/{user}/files/{fb[0].relative_to(home).as_posix()}")
    text = page.inner_text("body")
    shot(page, name)
    return text


def _env():
    return studentenv.environment(hh.ENVS)
