"""What tests/notebooks/test_browser.py needs around the browser: a throw-away course folder, a JupyterLab
server on a free port (stopped by its own process group), and JupyterLab's DOM conventions.

The browser is Debian's Chromium (/usr/bin/chromium, installed by scripts/install_browser.sh),
driven by Playwright for Python. Playwright's own browser download is never used.
"""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat

import nbtools
from autograder import contract, paths
from autograder.classroom.hub import free_port
from nbtools import in_ci

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# JupyterLab user settings written into the throw-away settings folder: no news or update
# pop-ups, and every cell kept in the page (no windowing), so widgets and plots further down a
# long notebook are rendered and can be inspected.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False,
                                                     "doNotDisturbMode": True},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/themes": {"adaptive-theme": False},
}

SERVER_CONFIG = """\
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LanguageServerManager.autodetect = False
c.ServerApp.terminals_enabled = False
"""


def require_browser(what):
    """Skip `what` (a test's name for itself) when Playwright or Chromium is missing; under CI, fail."""
    import pytest
    problems = []
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        problems.append("the Python package `playwright` is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        problems.append(f"no Chromium at {CHROMIUM} (run scripts/install_browser.sh as root, "
                        "or `apt-get install chromium`; set CHROMIUM=/path to use another)")
    if problems:
        msg = f"{what} cannot run: " + "; ".join(problems)
        if in_ci():
            pytest.fail(msg + " [CI is set, so this is a failure]", pytrace=False)
        pytest.skip(msg)


def make_course(root, assignments):
    """A copy of what the students and the instructor see, under `root`.

    root/notebooks/<id>/<id>.ipynb   the student release with every answer cell filled in with
                                     the solution (a student who has done the work)
    root/figs/*.png                  the figures the notebooks show (../../figs/X.png)
    root/solutions/<id>/<id>.ipynb   instructor sources, for the formgrader
    root/nbgrader_config.py          the course's config, with a gradebook and exchange in root
    Returns {assignment: path of the filled-in notebook}; an assignment without a student
    release (or without an instructor notebook) yet is left out.
    """
    root = Path(root)
    filled = {}
    for a in assignments:
        if not (paths.NOTEBOOKS / a / f"{a}.ipynb").exists() or not (paths.SOLUTIONS / a / f"{a}.ipynb").exists():
            continue
        nb = nbtools.submission(nbtools.release_nb(a), nbtools.solution_answers(a))
        path = root / "notebooks" / a / f"{a}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        filled[a] = path
        src = paths.SOLUTIONS / a / f"{a}.ipynb"
        (root / "solutions" / a).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, root / "solutions" / a / src.name)
    figs = paths.ROOT / "figs"
    (root / "figs").mkdir(exist_ok=True)
    for png in figs.glob("*.png"):
        shutil.copy(png, root / "figs" / png.name)
    config = paths.CONFIG.read_text()
    config += (f"\n# throw-away course root of the browser test\n"
               f"c.CourseDirectory.root = {str(root)!r}\n"
               f"c.CourseDirectory.db_url = {'sqlite:///' + str(root / 'gradebook.db')!r}\n"
               f"c.Exchange.root = {str(root / 'exchange')!r}\n")
    (root / "nbgrader_config.py").write_text(config)
    (root / "exchange").mkdir(exist_ok=True)
    os.chmod(root / "exchange", 0o777)   # as nbgrader wants its exchange (else: a warning banner)
    return filled


# Runs at the start of every kernel of the test server (IPython profile startup file): each time
# matplotlib renders a figure (inline plots, widget redraws), an Axes with nothing drawn in it
# prints an "EmptyPlotError" line on stderr, which the page check below reports as an error.
EMPTY_PLOT_CHECK = """\
def _archlab_check_plots():
    import sys
    import numpy as np
    import matplotlib.backend_bases as bb

    def has_data(ax):
        lines = any(np.isfinite(np.asarray(l.get_xydata(), float)).all(axis=-1).any() for l in ax.lines)
        cols = any(len(c.get_offsets()) or len(c.get_paths()) for c in ax.collections)
        texts = any(t.get_text().strip() for t in ax.texts)
        return bool(lines or cols or texts or ax.images or ax.patches or ax.tables)

    original = bb.FigureCanvasBase.print_figure

    def print_figure(self, *args, **kwargs):
        fig = self.figure
        empty = [ax.get_title() or f"axes {i}" for i, ax in enumerate(fig.axes)
                 if ax.get_visible() and not has_data(ax)]
        if empty:
            print(f"EmptyPlotError: a figure has axes with nothing drawn in them: {empty}", file=sys.stderr)
        return original(self, *args, **kwargs)

    bb.FigureCanvasBase.print_figure = print_figure


_archlab_check_plots()
del _archlab_check_plots
"""


def lab_environment(state):
    """Environment of the server: every Jupyter/IPython/matplotlib folder inside `state`."""
    state = Path(state)
    env = dict(os.environ)
    for k in ("NBGRADER_EXECUTION", "COURSE_ASSIGNMENTS", "MPLBACKEND"):
        env.pop(k, None)
    dirs = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime",
            "IPYTHONDIR": "ipython", "MPLCONFIGDIR": "matplotlib"}
    for key, sub in dirs.items():
        env[key] = str(state / sub)
        (state / sub).mkdir(parents=True, exist_ok=True)
    env["JUPYTERLAB_SETTINGS_DIR"] = str(state / "config" / "lab" / "user-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(state / "config" / "lab" / "workspaces")
    contract.apply_kernel_env(env, override=True)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    for plugin, values in LAB_SETTINGS.items():
        path = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    (state / "config" / "jupyter_server_config.py").write_text(SERVER_CONFIG)
    startup = state / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-archlab-empty-plots.py").write_text(EMPTY_PLOT_CHECK)
    return env


class LabServer:
    """`jupyter lab` on 127.0.0.1:<free port> with a random token; stop() ends its process group."""

    def __init__(self, course_root, state, log_path):
        self.root = Path(course_root)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = lab_environment(state)
        self.log_path = Path(log_path)
        self.proc = None

    def start(self, timeout=180):
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={self.root}"]
        self._log = open(self.log_path, "w")
        # its own session = its own process group: stop() ends the server and its kernels
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer within {timeout} s:\n{self.log_tail()}")

    def url(self, path, **query):
        q = "&".join([f"token={self.token}"] + [f"{k}={v}" if v is not None else k for k, v in query.items()])
        return f"{self.base}{path}?{q}"

    def api(self, method, path, timeout=30):
        req = urllib.request.Request(self.base + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def kernel_state(self, nb_path):
        """execution_state of the kernel of the session on nb_path (relative), or None."""
        for s in self.api("GET", "/api/sessions"):
            if s.get("path") == nb_path and s.get("kernel"):
                return s["kernel"].get("execution_state")
        return None

    def shutdown_session(self, nb_path):
        for s in self.api("GET", "/api/sessions"):
            if s.get("path") == nb_path:
                self.api("DELETE", f"/api/sessions/{s['id']}")

    def log_tail(self, n=4000):
        try:
            return self.log_path.read_text()[-n:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the server's pid
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # kernels are in the same group; make sure none outlived the server
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._log.close()


def code_cells_to_run(nb_path):
    """Number of code cells with a non-blank source (JupyterLab does not run empty cells)."""
    nb = nbformat.read(nb_path, as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code" and c.source.strip())


# ---------------------------------------------------------------------------------------------
# What a student sees: JupyterLab's DOM
# ---------------------------------------------------------------------------------------------
# Prompts: "[ ]:" never run, "[*]:" running or queued, "[3]:" done. Errors are rendered with the
# stderr MIME type; a traceback or an "XxxError:" line tells them from warnings.
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
PROMPTS_JS = f"""() => Array.from(document.querySelectorAll(
    '{PANEL} .jp-CodeCell .jp-InputPrompt')).map(e => e.textContent.trim())"""
ERRORS_JS = f"""() => Array.from(document.querySelectorAll(
    '{PANEL} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
    .map(e => e.textContent).filter(t => /Traceback|^\\w*(Error|Exception)\\b/m.test(t))"""
PLOTS_JS = f"""() => Array.from(document.querySelectorAll('{PANEL} .jp-Cell-outputArea img'))
    .filter(i => i.src.startsWith('data:image/png') && i.naturalWidth > 0).length"""
MD_IMAGES_JS = f"""() => Array.from(document.querySelectorAll('{PANEL} .jp-MarkdownOutput img'))
    .map(i => ({{src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}}))"""

OUTPUT_SIGNATURE_JS = """el => Array.from(el.querySelectorAll('.jp-OutputArea-output'))
    .map(o => Array.from(o.querySelectorAll('img')).map(i => i.src).join('|') + o.textContent).join('\\n')"""


def wait_for(predicate, timeout, what, lab=None, step=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    extra = f"\n--- server log tail ---\n{lab.log_tail()}" if lab else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{extra}")


def check_notebook(page, lab, rel, n_cells, shot=None, kernel_timeout=120, run_timeout=300,
                   widget_timeout=60):
    """Open rel in JupyterLab, Run All, check errors / plots / figures / the widget; return
    the seconds Run All took. Raises AssertionError saying what a student would miss."""
    name = Path(rel).stem
    page.goto(lab.url(f"/lab/workspaces/{name}/tree/{rel}", reset=None))
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=120_000)
    # 1. a kernel of the notebook's kernelspec has started and is idle (the REST API says so)
    wait_for(lambda: lab.kernel_state(rel) == "idle", kernel_timeout, f"an idle kernel for {rel}", lab)
    # 2. Run All from the menu, as a student would
    page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

    def no_errors():
        errors = page.evaluate(ERRORS_JS)
        assert not errors, f"{name}: error output in JupyterLab:\n" + "\n---\n".join(errors)[:4000]

    def finished():
        no_errors()
        prompts = page.evaluate(PROMPTS_JS)
        done = sum(1 for p in prompts if re.fullmatch(r"\[\d+\]:", p))
        running = any("*" in p for p in prompts)
        return not running and done >= n_cells and lab.kernel_state(rel) == "idle"
    started = time.monotonic()
    wait_for(finished, run_timeout, f"Run All of {name} to finish", lab)
    run_s = time.monotonic() - started
    no_errors()

    # 3. plots: inline PNGs rendered in cell outputs; markdown figures (../../figs) loaded
    assert page.evaluate(PLOTS_JS) >= 1, f"{name}: no plot (inline PNG) in the outputs"
    for img in page.evaluate(MD_IMAGES_JS):
        assert img["ok"], f"{name}: markdown image {img['src']} does not load"

    # 4. the explorers: ipywidgets `interactive`s (controls, then an Output); every control of
    #    every one must change what its output shows
    try:
        page.wait_for_selector(".widget-interact .widget-slider", timeout=widget_timeout * 1000)
    except Exception as e:  # playwright's TimeoutError
        raise AssertionError(f"{name}: no explorer widget with a slider rendered ({e.__class__.__name__})") from e
    widgets = page.locator(".widget-interact")
    moved = 0
    for w in range(widgets.count()):
        moved += exercise_widget(page, lab, rel, name, widgets.nth(w), widget_timeout, no_errors)
    assert moved, f"{name}: the explorer has no control to move"
    no_errors()
    if shot is not None:
        time.sleep(1)  # let the new image decode
        Path(shot).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
    return run_s


CONTROLS = ".widget-slider, .widget-checkbox, .widget-dropdown"


def exercise_widget(page, lab, rel, name, widget, timeout, no_errors):
    """Move each control of one explorer in turn; each move must redraw its output differently.

    Sliders move three keyboard steps away from the end they sit at, a checkbox is clicked, a
    dropdown takes another option. Returns the number of controls moved."""
    widget.scroll_into_view_if_needed()
    output = widget.locator(".widget-output").last

    def shown():   # what the output shows: images by their data, text by its characters
        return output.evaluate(OUTPUT_SIGNATURE_JS)
    wait_for(lambda: shown().strip(), timeout, f"{name}: the widget's first drawing")
    controls = widget.locator(CONTROLS)
    for i in range(controls.count()):
        control = controls.nth(i)
        texts = control.locator(".widget-label, .widget-label-basic").all_text_contents()
        texts = [t.replace("\u200b", "").strip() for t in texts]    # ipywidgets pads empty labels with it
        label = next((t for t in texts if t), f"control {i}")
        time.sleep(1)
        before = shown()
        kind = control.get_attribute("class") or ""
        if "widget-slider" in kind:
            handle = control.locator(".noUi-handle").first
            handle.focus()
            # move away from the end the slider sits at (noUiSlider keeps aria-value* on its handle)
            at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
            for _ in range(3):
                handle.press("ArrowLeft" if at_max else "ArrowRight")
        elif "widget-checkbox" in kind:
            control.locator("input[type=checkbox]").click()
        else:
            select = control.locator("select")
            options = select.locator("option").all_text_contents()
            current = select.evaluate("s => s.options[s.selectedIndex].text")
            select.select_option(label=next(o for o in options if o != current))

        def redrawn(before=before):   # called only in this iteration, by wait_for below
            # the Output clears, then refills: wait for a new, non-empty drawing and an idle kernel
            now = shown()
            return now.strip() and now != before and lab.kernel_state(rel) == "idle"
        wait_for(redrawn, timeout, f"{name}: the widget's output to change after moving its control {label!r}")
        no_errors()
    return controls.count()


# A tiny notebook for checking the checker: a plot and an explorer; variants break one thing.
SELFTEST_CELLS = [
    "%matplotlib inline\nimport ipywidgets as W\nimport matplotlib.pyplot as plt",
    "fig, ax = plt.subplots(figsize=(3, 2))\nax.plot([0, 1], [0, 1])\nplt.show()",
    "def draw(n=1, dashed=False):\n    fig, ax = plt.subplots(figsize=(3, 2))\n"
    "    ax.plot(range(n + 2), ls='--' if dashed else '-')\n"
    "    ax.set_title(f'n = {n}, dashed = {dashed}')\n    plt.show()\n\n"
    "W.interactive(draw, n=W.IntSlider(value=1, min=0, max=9), dashed=W.Checkbox(value=False))",
]
SELFTEST_BREAKS = {
    "works": {},
    "error": {1: "fig, ax = plt.subplots(figsize=(3, 2))\nax.plot([0, 1], [0, 1])\nplt.show()\n1 / 0"},
    # a plot with axes and nothing in them
    "empty_plot": {1: "fig, ax = plt.subplots(figsize=(3, 2))\nax.set_title('nothing here')\nplt.show()"},
    # the slider moves but the drawing ignores it
    "dead_widget": {2: SELFTEST_CELLS[2].replace("ax.plot(range(n + 2)", "ax.plot(range(3)")
                    .replace("f'n = {n}, dashed = {dashed}'", "f'dashed = {dashed}'")},
    # the second control (the checkbox) does nothing
    "dead_second_control": {2: SELFTEST_CELLS[2].replace("ls='--' if dashed else '-'", "ls='-'")
                            .replace("f'n = {n}, dashed = {dashed}'", "f'n = {n}'")},
    "no_widget": {2: "print('no explorer here')"},
}


def write_selftest(root, variant):
    cells = [SELFTEST_BREAKS[variant].get(i, src) for i, src in enumerate(SELFTEST_CELLS)]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    path = Path(root) / "selftest" / f"selftest_{variant}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def make_lab_contents(folder, timeout=180, log_path=None):
    """Run `make lab` in `folder` as this user, without a display; return the contents API's listing
    of notebooks/ once the server answers, then stop the server (its whole process group).

    The port and the token are passed through LAB_ARGS, as a user could; --allow-root and
    --no-browser must come from the Makefile's own logic (scripts/lab.sh)."""
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "VIRTUAL_ENV")}
    env["LAB_ARGS"] = (f"--ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0 "
                       f"--IdentityProvider.token={token}")
    log = open(log_path or os.devnull, "w")
    proc = subprocess.Popen(["make", "lab"], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"`make lab` exited with {proc.returncode} in {folder}")
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/contents/",
                                         headers={"Authorization": f"token {token}"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return json.loads(r.read())
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        raise TimeoutError(f"`make lab` in {folder} did not serve within {timeout} s")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
