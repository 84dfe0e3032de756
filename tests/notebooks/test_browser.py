"""The students' view, end to end: JupyterLab in a real browser (Debian's Chromium, Playwright).

For every notebook present: open the student release (answer cells filled in with the solution,
as a student who has done the work would have it), wait for the kernel, Run All Cells from the
menu, wait until no cell is running, then check what a student sees: no error output, plots
(inline PNG), none of them empty (a kernel-side check reports any Axes with nothing drawn), the
figures the markdown shows, and explorer widgets whose every control (slider, checkbox,
dropdown) changes what the widget draws. A screenshot of each notebook,
scrolled to its widget, lands in build/browser/<id>.png. Last, the instructor's view: nbgrader's
formgrader page loads and lists the assignments.

Needs /usr/bin/chromium (scripts/install_browser.sh, run by `make test`) and the `playwright`
package. Without them the tests skip, unless CI is set: then they fail.
"""


import pytest

import browser_helpers as bh
from autograder.paths import BUILD, present_assignments

SHOTS = BUILD / "browser"
RUN_TIMEOUT = 300       # s for Run All of one notebook (QUICK runs in < 90 s; 2 busy cores)
pytestmark = [pytest.mark.browser, pytest.mark.notebooks, pytest.mark.slow]




@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    return root, bh.make_course(root, present_assignments())


@pytest.fixture(scope="module")
def lab(course, tmp_path_factory):
    bh.require_browser("browser test")
    root, _ = course
    state = tmp_path_factory.mktemp("jupyter_state")
    server = bh.LabServer(root, state, state / "lab.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        assert server.proc is None or server.proc.poll() is not None, "jupyter lab still running after stop()"


@pytest.fixture(scope="module")
def browser(lab, tmp_path_factory):
    from playwright.sync_api import sync_playwright
    profile = tmp_path_factory.mktemp("chromium_profile")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile), executable_path=bh.CHROMIUM, headless=True, args=bh.CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        ctx.set_default_timeout(60_000)
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.mark.parametrize("assignment", present_assignments())
def test_student_notebook_in_jupyterlab(assignment, course, lab, browser):
    """Run All works, no errors shown, plots and figures appear, the explorer widget responds."""
    _, filled = course
    assert assignment in filled, (f"{assignment}: no student release or instructor notebook yet "
                                  f"(python -m autograder release {assignment})")
    rel = f"notebooks/{assignment}/{assignment}.ipynb"
    page = browser.new_page()
    try:
        run_s = bh.check_notebook(page, lab, rel, bh.code_cells_to_run(filled[assignment]),
                                  shot=SHOTS / f"{assignment}.png", run_timeout=RUN_TIMEOUT)
        print(f"{assignment}: Run All took {run_s:.0f} s in JupyterLab")
    finally:
        try:
            lab.shutdown_session(rel)   # free the kernel's memory and CPU for the next notebook
        finally:
            page.close()


@pytest.mark.parametrize("variant, complaint", [
    ("works", None),
    ("error", "error output in JupyterLab"),
    ("empty_plot", "EmptyPlotError"),
    ("dead_widget", "output to change after moving its control 'n'"),
    ("dead_second_control", "output to change after moving its control 'dashed'"),
    ("no_widget", "no explorer widget with a slider rendered"),
])
def test_the_check_catches_what_a_student_would_miss(variant, complaint, course, lab, browser):
    """check_notebook passes a tiny working notebook and fails each broken variant of it."""
    root, _ = course
    path = bh.write_selftest(root, variant)
    rel = path.relative_to(root).as_posix()
    page = browser.new_page()
    try:
        if complaint is None:
            bh.check_notebook(page, lab, rel, bh.code_cells_to_run(path), widget_timeout=30)
        else:
            with pytest.raises(AssertionError, match=complaint):
                bh.check_notebook(page, lab, rel, bh.code_cells_to_run(path), widget_timeout=10)
    finally:
        try:
            lab.shutdown_session(rel)
        finally:
            page.close()


def test_formgrader_lists_assignments(course, lab, browser):
    """An instructor's view: nbgrader's formgrader page loads and lists every assignment."""
    page = browser.new_page()
    try:
        response = page.goto(lab.url("/formgrader"))
        assert response is not None and response.ok, f"/formgrader answered {response and response.status}"
        names = list(course[1])
        page.wait_for_selector("h1:has-text('Manage Assignments')")
        for name in names:   # the table is filled by the page's JavaScript from the REST API
            page.locator("table tbody tr", has_text=name).first.wait_for(timeout=120_000)
        rows = page.locator("table tbody tr").all_inner_texts()
        assert [n for n in names if not any(r.startswith(n) for r in rows)] == [], rows
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "formgrader.png"))
    finally:
        page.close()
