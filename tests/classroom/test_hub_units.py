"""The hub's small parts without a hub: the roster's checks, the late policy, due dates, the
roles' JupyterLab configuration."""

import datetime
import json
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from autograder.classroom import exchange, hub, roster
from autograder.errors import CourseError
from autograder.grading import late


def _roster(tmp_path, text):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    return path


def test_a_good_roster(tmp_path):
    members = roster.read(_roster(tmp_path, "id,name,role,lms_id\nada,Ada Lovelace,student,S1\n"
                                            "grace,Grace Hopper,Instructor,\n"))
    assert [(m.id, m.role, m.lms_id) for m in members] == [("ada", "student", "S1"), ("grace", "instructor", "")]
    assert members[0].first_last == ("Ada", "Lovelace")


@pytest.mark.parametrize("text, complaint", [
    ("id,name,role\nada,Ada,student\n", "missing column(s) lms_id"),
    ("id,name,role,lms_id\nAda Smith,Ada,student,S1\ng,G,instructor,\n", "is not a login name"),
    ("id,name,role,lms_id\nada,Ada,teacher,S1\ng,G,instructor,\n", "role 'teacher' must be one of"),
    ("id,name,role,lms_id\nada,Ada,student,\ng,G,instructor,\n", "has no lms_id"),
    ("id,name,role,lms_id\nada,Ada,student,S1\nada,Ada,student,S2\ng,G,instructor,\n", "appears twice"),
    ("id,name,role,lms_id\nada,Ada,student,S1\n", "no instructor"),
    ("id,name,role,lms_id\nroot,Root,student,S1\ng,G,instructor,\n", "is a system account"),
    ("id,name,role,lms_id\n", "has no rows"),
])
def test_a_bad_roster_says_what_is_wrong(tmp_path, text, complaint):
    with pytest.raises(CourseError, match=re.escape(complaint)):
        roster.read(_roster(tmp_path, text))


@pytest.mark.parametrize("method, pct, grace, late_s, score, expected", [
    ("none", 10, 0, 3 * 86400, 8.0, None),
    ("zero", 10, 0, 1, 8.0, 8.0),
    ("per_day", 10, 0, 1, 8.0, 0.8),             # any part of a day counts as a day
    ("per_day", 10, 0, 86400, 8.0, 0.8),
    ("per_day", 10, 0, 86401, 8.0, 1.6),
    ("per_day", 40, 0, 5 * 86400, 8.0, 8.0),     # never more than the score
    ("per_day", 10, 5, 299, 8.0, None),          # inside the grace period
    ("per_day", 10, 5, 301, 8.0, 0.8),
])
def test_late_policy(method, pct, grace, late_s, score, expected):
    policy = late.LatePolicy(penalty_method=method, percent_per_day=pct, grace_minutes=grace)
    got = policy.late_submission_penalty("ada", score, late_s)
    assert got == (None if expected is None else pytest.approx(expected))


def test_late_policy_from_the_command_line():
    assert late.parse_policy("per-day:10") == ["c.LatePolicy.penalty_method = 'per_day'",
                                               "c.LatePolicy.percent_per_day = 10.0"]
    assert late.parse_policy("zero") == ["c.LatePolicy.penalty_method = 'zero'"]
    for bad in ("per-day", "per-day:x", "per-day:0", "zero:5", "weekly"):
        with pytest.raises(CourseError, match="late policy"):
            late.parse_policy(bad)


def test_due_dates_are_stored_in_utc():
    assert exchange.parse_due("2026-03-01T17:00:00+01:00") == datetime.datetime(2026, 3, 1, 16, 0)
    assert exchange.parse_due("2026-03-01T17:00") == datetime.datetime(2026, 3, 1, 17, 0)
    with pytest.raises(CourseError, match="ISO 8601"):
        exchange.parse_due("next friday")


def _bundle_with(text, folder):
    """The one JavaScript file of an installed bundle that holds `text` (and that file's text)."""
    found = [(f, f.read_text()) for f in sorted(Path(folder).glob("*.js")) if text in f.read_text()]
    assert len(found) == 1, f"{text!r} in {len(found)} files of {folder}"
    return found[0][1]


@pytest.fixture
def roles(tmp_path):
    layout = SimpleNamespace(etc=tmp_path / "etc", exchange=tmp_path / "exchange", course=tmp_path / "course")
    hub.role_configs(hub.HubSettings(roster="unused.csv"), layout)
    return layout.etc


def test_no_role_is_asked_about_jupyter_news(roles, monkeypatch):
    """The announcements plugin asks the question (the installed JupyterLab, whose pins the students'
    environment shares), and JupyterLab's own page config, read as the server reads it for the
    role, disables that plugin."""
    from jupyterlab_server.config import get_page_config
    core = _bundle_with(hub.ANNOUNCEMENTS, Path(sys.prefix) / "share" / "jupyter" / "lab" / "static")
    plugin = core[core.index(f'id:"{hub.ANNOUNCEMENTS}"'):][:3000]
    assert "Would you like to get notified about official Jupyter news?" in plugin
    for role in roster.ROLES:
        monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(roles / role))
        assert hub.ANNOUNCEMENTS in get_page_config([], None)["disabledExtensions"], role


def test_students_open_on_the_assignments_tab_at_their_first_start(roles, tmp_path, monkeypatch):
    """The student's server configuration, run as their server runs it, writes JupyterLab's default
    workspace holding nbgrader's assignment list by the key its lab extension restores it from; a
    workspace the student already has is left as it is; instructors get no such file."""
    from jupyterlab.commands import get_workspaces_dir
    from jupyterlab_server.workspaces_handler import WorkspacesManager
    from traitlets.config.loader import PyFileConfigLoader
    labextensions = Path(sys.prefix) / "share" / "jupyter" / "labextensions"
    nbgrader = _bundle_with('namespace:"nbgrader-assignment-list"', labextensions / "@jupyter" / "nbgrader" / "static")
    namespace, name = hub.ASSIGNMENTS_KEY.split(":")
    assert f'namespace:"{namespace}"' in nbgrader and f'name:()=>"{name}"' in nbgrader
    assert not (roles / "instructor" / "jupyter_server_config.py").exists()
    config = roles / "student" / "jupyter_server_config.py"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        monkeypatch.delenv(var, raising=False)

    def start():
        PyFileConfigLoader(config.name, path=str(config.parent)).load_config()
        return WorkspacesManager(get_workspaces_dir()).load("default")

    assert str(tmp_path / "home") in get_workspaces_dir()
    assert start()["data"] == {hub.ASSIGNMENTS_KEY: {"data": {}}}
    own = {"data": {"notebook:01_self_attention.ipynb": {"data": {"path": "01_self_attention.ipynb"}}},
           "metadata": {"id": "default"}}
    WorkspacesManager(get_workspaces_dir()).save("default", json.dumps(own))
    assert start()["data"] == own["data"]


def test_the_hubs_grading_service_grades_where_the_instructor_says():
    """`hub --grading-workers/--grading-cluster/--grading-scheduler` reach the service JupyterHub starts."""
    layout = SimpleNamespace(course=Path("/opt/archlab-hub/course"))
    plain = hub.grader_command(hub.HubSettings(roster="r.csv", grading_workers=3), layout)
    assert plain[plain.index("serve"):plain.index("--workers")] == ["serve", "--workspace", "/opt/archlab-hub/course"]
    assert "--workers" in plain and plain[plain.index("--workers") + 1] == "3"
    assert "--cluster" not in plain and "--scheduler" not in plain
    dask = hub.grader_command(hub.HubSettings(roster="r.csv", grading_scheduler="tcp://10.0.0.5:8786"), layout)
    assert dask[dask.index("--scheduler") + 1] == "tcp://10.0.0.5:8786"
    local = hub.grader_command(hub.HubSettings(roster="r.csv", grading_cluster="local:2"), layout)
    assert local[local.index("--cluster") + 1] == "local:2"


def test_the_hub_gives_the_queue_page_to_instructors_only(tmp_path):
    """The hub's configuration: a second service serves the queue page, and only the roster's
    instructors hold the scope to open it (JupyterHub refuses everyone else)."""
    from traitlets.config import Config

    from autograder.classroom import status_page
    members = [SimpleNamespace(id="inst1", role="instructor"), SimpleNamespace(id="stu1", role="student")]
    layout = SimpleNamespace(env=tmp_path / "env", hub=tmp_path / "hub", members=members, etc=tmp_path / "etc",
                             course=tmp_path / "course", hub_config=tmp_path / "config.py", edition=tmp_path / "ed")
    hub.hub_config(hub.HubSettings(roster="r.csv"), layout)
    c = Config()
    exec(compile(layout.hub_config.read_text(), "jupyterhub_config.py", "exec"), {"get_config": lambda: c})
    [page] = [sv for sv in c.JupyterHub.services if sv["name"] == status_page.NAME]
    assert page["url"].startswith("http://127.0.0.1:") and page["command"][-3:] == \
        ["status-page", "--workspace", str(layout.course)]
    readers = [r for r in c.JupyterHub.load_roles if f"access:services!service={status_page.NAME}" in r["scopes"]]
    assert [r["users"] for r in readers] == [["inst1"]]


def test_the_queue_page_says_what_status_live_prints(tmp_path):
    from autograder.classroom import on_submit, service, status_page
    assert "no grading service has run" in status_page.render(tmp_path)
    on_submit.set_rule(tmp_path, "01_self_attention", enabled=True, before_deadline="counts", budget="3/60m")
    now = time.time()
    service._write_json(tmp_path / "service" / service.STATUS, {
        "updated": now, "pid": 1, "workers": 2, "queue": 1, "waiting": ["s<1>/01_self_attention"],
        "grading": [], "graded_last_hour": 4, "median_latency_s": 9.5, "p95_latency_s": 14.0,
        "failures": [{"key": "s2/01_self_attention", "reason": "grader error: OSError: disk full"}]})
    page = status_page.render(tmp_path)
    assert "graded in the last hour 4" in page and "median 9.5 s, p95 14.0 s" in page
    assert "waiting  s&lt;1&gt;/01_self_attention" in page        # escaped
    assert "failure  s2/01_self_attention: grader error: OSError: disk full" in page
    assert "on submit: 01_self_attention" in page and "budget 3/60m" in page
