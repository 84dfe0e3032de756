"""A class on one server: `python -m autograder hub --roster roster.csv [--port P] [--db-url URL]`.

Brings up JupyterHub for the roster's accounts, each student working in JupyterLab with nbgrader's
Assignments tab, the instructors with its Formgrader, all of it on this machine. Run it as root
(it creates accounts and starts every user's server as that user). The pieces, and why:

- **Authenticator: PAM, on real Linux accounts** (as The Littlest JupyterHub does). One account
  per roster row (created when missing, with a random first password in
  `<prefix>/hub/initial-passwords.csv`, root only). Real accounts are what make nbgrader's exchange
  safe: a submission folder belongs to the account that wrote it, students cannot list the
  inbound folder or read each other's home (0700), and the collector refuses a submission made in
  someone else's name. An OAuth or LMS login would need the same accounts underneath.
- **Spawner: LocalProcessSpawner** (JupyterHub's default): each user's server is a process of
  its own account on this machine. No container runtime to install; the cost is that limits are
  per process, not per user (see autograder/README.md for where one server stops scaling).
- **Proxy: configurable-http-proxy**, Debian's node-configurable-http-proxy
  (scripts/install_hub.sh).
- **What students run** (autograder.classroom.studentenv): the student edition in `<prefix>/edition` and a
  shared, cached environment of a system Python in `<envs>/<hash>`; never the repository, which
  this command closes to every account outside the instructors' group (mode 0750).
- **The course folder** `<prefix>/course` (root and the instructors' group, 2770) is nbgrader's
  course directory and the grader's workspace at once: `--workspace <prefix>/course` for every
  instructor verb. Its nbgrader_config.py holds the gradebook URL (`--db-url`: SQLite in the
  folder by default, or PostgreSQL), the exchange and the late policy.
- **The exchange** `<prefix>/exchange`, with nbgrader's permissions (autograder.classroom.exchange).

Each user's server gets the configuration of their role from `<prefix>/etc/<role>/`
(JUPYTER_CONFIG_PATH): students see the Assignments tab only (no Formgrader, no course list, no
assignment creator); instructors also get the Formgrader on the course folder. Hiding is a
convenience; what protects answers and other students' work is the file permissions above.
"""

import csv
import grp
import json
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook

from autograder import contract, grade, nbg, paths
from autograder.classroom import roster, status_page, studentenv
from autograder.errors import CourseError
from autograder.grading import autograde, late

log = logging.getLogger(__name__)


@dataclass
class HubSettings:
    roster: str
    prefix: str = "/opt/archlab-hub"
    envs: str = ""                      # default <prefix>/envs
    port: int = 8000
    ip: str = "127.0.0.1"               # 0.0.0.0 to serve the class; then give --ssl-cert/--ssl-key
    db_url: str = ""                    # default sqlite:///<prefix>/course/gradebook.db
    course_id: str = "architectures-workbook"
    instructors_group: str = "archlab-instructors"
    late_policy: str = "none"           # none | zero | per-day:PERCENT (autograder.grading.late)
    python: str = ""                    # the students' Python; default: Debian's python3.11
    ssl_cert: str = ""
    ssl_key: str = ""
    setup_only: bool = False            # everything but starting JupyterHub
    grading_workers: int = 2            # the grading service's submissions graded at once
    grading_cluster: str = ""           # "local:N": the service grades on a Dask LocalCluster it starts
    grading_scheduler: str = ""         # "tcp://HOST:8786": the service grades on a running Dask cluster

    def __post_init__(self):
        autograde.Settings(workers=self.grading_workers, cluster=self.grading_cluster or None,
                           scheduler=self.grading_scheduler or None)     # the service's checks, before any set-up


@dataclass
class Layout:
    prefix: Path
    course: Path          # nbgrader course directory = the grader's workspace
    exchange: Path
    edition: Path
    env: Path
    etc: Path             # etc/<role>/: each role's Jupyter and nbgrader configuration
    hub: Path             # JupyterHub's own state, root only
    hub_config: Path
    passwords: Path
    members: list


def _run(*cmd, input=None):
    r = subprocess.run(cmd, input=input, capture_output=True, text=True)
    if r.returncode:
        raise CourseError(f"{' '.join(cmd[:2])} failed: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def proxy_command():
    """configurable-http-proxy: Debian's (apt) or npm's under build/node."""
    found = shutil.which("configurable-http-proxy")
    local = paths.BUILD / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
    if found:
        return found
    if local.exists():
        return str(local)
    raise CourseError("configurable-http-proxy is not installed: run scripts/install_hub.sh as root "
                     "(apt-get install node-configurable-http-proxy)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_db_url(url):
    if not url.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://")):
        raise CourseError(f"--db-url {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB")
    if url.startswith("postgresql"):
        import sqlalchemy
        try:
            with sqlalchemy.create_engine(url).connect():
                pass
        except Exception as e:  # OperationalError with the server's own words
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CourseError(f"cannot reach the gradebook at {url}: {first}") from None
    return url


# ---------------------------------------------------------------------------------------------
# accounts
# ---------------------------------------------------------------------------------------------
def ensure_accounts(members, group, edition, passwords, course=None):
    """A Linux account per roster row; instructors in `group`; every home 0700.

    New accounts get a random password, appended to `passwords` (root only). Existing accounts
    keep theirs. Each home gets `figs` -> the edition's figures (the notebooks show ../../figs/);
    an instructor's also `course` -> the course folder (the Formgrader only works on a course
    folder under the server's root, the home).
    """
    _run("groupadd", "-f", group)
    new = []
    for m in members:
        try:
            pw = pwd.getpwnam(m.id)
        except KeyError:
            _run("useradd", "--create-home", "--shell", "/bin/bash", "--user-group",
                 "--comment", m.name.replace(":", " ").replace(",", " "), m.id)
            password = secrets.token_urlsafe(12)
            _run("chpasswd", input=f"{m.id}:{password}\n")
            new.append((m.id, password))
            pw = pwd.getpwnam(m.id)
        home = Path(pw.pw_dir)
        os.chmod(home, 0o700)
        if m.role == "instructor":
            _run("usermod", "--append", "--groups", group, m.id)
        links = {"figs": Path(edition) / "figs"}
        if m.role == "instructor" and course is not None:
            links["course"] = Path(course)
        for name, target in links.items():
            link = home / name
            if not link.exists() and not link.is_symlink():
                link.symlink_to(target)
                os.lchown(link, pw.pw_uid, pw.pw_gid)
    if new:
        passwords.parent.mkdir(parents=True, exist_ok=True)
        fresh = not passwords.exists()
        with passwords.open("a", newline="") as f:
            os.chmod(passwords, 0o600)
            w = csv.writer(f)
            if fresh:
                w.writerow(["id", "initial_password"])
            w.writerows(new)
    return new


def close_repository(group):
    """The repository holds every answer: only root and the instructors' group may enter it."""
    gid = grp.getgrnam(group).gr_gid
    st = os.stat(paths.ROOT)
    if st.st_gid != gid or st.st_mode & 0o7777 != 0o750:
        os.chown(paths.ROOT, -1, gid)
        os.chmod(paths.ROOT, 0o750)
        log.info(f"closed the repository to other accounts: {paths.ROOT} is now root:{group} 0750")


def share_with_group(folder, group):
    """Every file of the course folder readable and writable by the instructors' group only."""
    gid = grp.getgrnam(group).gr_gid
    for p in [Path(folder), *Path(folder).rglob("*")]:
        if p.is_symlink():
            continue
        st = os.stat(p)
        os.chown(p, -1, gid)
        if p.is_dir():
            os.chmod(p, (st.st_mode & 0o7777 | 0o2070) & ~0o007)
        else:
            os.chmod(p, (st.st_mode & 0o777 | 0o060) & ~0o007)


# ---------------------------------------------------------------------------------------------
# the course folder, the roles' configuration, JupyterHub's configuration
# ---------------------------------------------------------------------------------------------
def course_config(s, course, exchange, db_url):
    """The course folder's nbgrader_config.py: the course's own configuration plus this hub's."""
    lines = [paths.CONFIG.read_text(), "", "# --- this hub's course folder (written by python -m autograder hub) ---",
             f"c.CourseDirectory.course_id = {s.course_id!r}",
             f"c.CourseDirectory.root = {str(course)!r}",
             "c.CourseDirectory.source_directory = 'source'",
             "c.CourseDirectory.release_directory = 'release'",
             f"c.CourseDirectory.db_url = {db_url!r}",
             f"c.Exchange.root = {str(exchange)!r}",
             "c.Exchange.path_includes_course = True",
             *late.parse_policy(s.late_policy), ""]
    return "\n".join(lines)


def make_course(s, layout, db_url, members):
    course = layout.course
    course.mkdir(parents=True, exist_ok=True)
    cfg = course / "nbgrader_config.py"
    cfg.write_text(course_config(s, course, layout.exchange, db_url))
    for a in paths.present_assignments():     # the formgrader (instructors' accounts) reads source/
        dest = course / "source" / a
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(paths.SOLUTIONS / a / f"{a}.ipynb", dest / f"{a}.ipynb")
    grade.prepare_workspace(course)           # every assignment in the gradebook, release/ made
    with Gradebook(nbg.config(course).CourseDirectory.db_url, s.course_id) as gb:
        for m in members:
            if m.role == "student":
                first, last = m.first_last
                gb.update_or_create_student(m.id, first_name=first, last_name=last, lms_user_id=m.lms_id)
    share_with_group(course, s.instructors_group)
    os.chown(course, 0, grp.getgrnam(s.instructors_group).gr_gid)
    os.chmod(course, 0o2770)


# JupyterLab's announcements plugin asks every new user "Would you like to get notified about
# official Jupyter news?" (its setting fetchNews of @jupyterlab/apputils-extension:notification is
# "none" until answered). A class has nothing to answer: the plugin is off for both roles.
ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"

# nbgrader's assignment list is restored from a workspace by its tracker's key (namespace:name,
# plugin @jupyter/nbgrader:assignment-list): a default workspace holding that key opens it.
ASSIGNMENTS_KEY = "nbgrader-assignment-list:nbgrader-assignment-list"

# <etc>/student/jupyter_server_config.py: run by each student's server, as the student, when it
# starts. JupyterLab at /lab opens the workspace "default" from the student's own workspaces
# folder; until the student has one (their first start), it is written holding the Assignments tab.
STUDENT_SERVER_CONFIG = f'''\
# Written by python -m autograder hub (autograder/classroom/hub.py): students open on the Assignments tab.
import json as _json
import os as _os

try:
    from jupyterlab.commands import get_workspaces_dir as _workspaces_dir
    from jupyterlab_server.workspaces_handler import WORKSPACE_EXTENSION as _EXT
    from jupyterlab_server.workspaces_handler import WorkspacesManager as _Manager
    from jupyterlab_server.workspaces_handler import slugify as _slugify

    if not _os.path.exists(_os.path.join(_workspaces_dir(), _slugify("default") + _EXT)):
        _Manager(_workspaces_dir()).save("default", _json.dumps(
            {{"data": {{{ASSIGNMENTS_KEY!r}: {{"data": {{}}}}}}, "metadata": {{"id": "default"}}}}))
except Exception as _e:   # never stop the server for it; JupyterLab then opens on its launcher
    print(f"could not open the Assignments tab at the first start: {{type(_e).__name__}}: {{_e}}")
'''


def role_configs(s, layout):
    """<etc>/<role>/: nbgrader's settings, the server extensions and the lab plugins of each role;
    students open on the Assignments tab; nobody is asked about Jupyter news."""
    for role in roster.ROLES:
        d = layout.etc / role
        (d / "labconfig").mkdir(parents=True, exist_ok=True)
        instructor = role == "instructor"
        nbg_lines = [f"c.CourseDirectory.course_id = {s.course_id!r}",
                     f"c.Exchange.root = {str(layout.exchange)!r}",
                     "c.Exchange.path_includes_course = True   # ~/<course>/<id>/: the notebooks' ../../figs is ~/figs"]
        if instructor:   # the formgrader works on the course folder, with the course's settings,
            # through ~/course (it refuses a course folder outside the server's root, the home)
            nbg_lines = [f"load_subconfig({str(layout.course / 'nbgrader_config.py')!r})", "import os",
                         "c.CourseDirectory.root = os.path.join(os.path.expanduser('~'), 'course')"] + nbg_lines
        (d / "nbgrader_config.py").write_text("\n".join(nbg_lines) + "\n")
        server = {"ServerApp": {"jpserver_extensions": {
                      "nbgrader.server_extensions.assignment_list": True,
                      "nbgrader.server_extensions.validate_assignment": True,
                      "nbgrader.server_extensions.formgrader": instructor,
                      "nbgrader.server_extensions.course_list": instructor}},
                  "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}}
        (d / "jupyter_server_config.json").write_text(json.dumps(server, indent=1))
        hidden = {} if instructor else {"@jupyter/nbgrader:formgrader": True, "@jupyter/nbgrader:course-list": True,
                                        "@jupyter/nbgrader:create-assignment": True}
        hidden[ANNOUNCEMENTS] = True
        (d / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": hidden}, indent=1))
        start = d / "jupyter_server_config.py"
        if instructor:
            start.unlink(missing_ok=True)
        else:
            start.write_text(STUDENT_SERVER_CONFIG)
        for p in [d, *d.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)


HUB_CONFIG = '''\
# JupyterHub for the course, written by `python -m autograder hub` (autograder/classroom/hub.py); rerun
# that command rather than editing this file.
c = get_config()  # noqa: F821
c.JupyterHub.ip = {ip!r}
c.JupyterHub.port = {port!r}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port!r}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/jupyterhub_cookie_secret"
c.JupyterHub.cleanup_servers = True
{ssl}
# real accounts, PAM passwords; only the roster may log in
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False
c.Authenticator.allowed_users = {allowed!r}

# every user's server is a process of their own account, in the students' environment
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.Spawner.environment = {environment!r}
ROLES = {roles!r}


def role_configuration(spawner):
    """Students get the Assignments tab; instructors also the Formgrader (<etc>/<role>/)."""
    spawner.environment["JUPYTER_CONFIG_PATH"] = {etc!r} + "/" + ROLES[spawner.user.name]


c.Spawner.pre_spawn_hook = role_configuration

# the grading service (autograder/classroom/service.py): started with the hub and started again if it
# dies; as root, the hub's user, because the jail needs it. It grades the assignments an instructor
# turned on with `python -m autograder on-submit ID`.
c.JupyterHub.services = [{{"name": "grader", "command": {grader!r}, "cwd": {repo!r}, "environment": {kernel_env!r}}},
# its queue as a page at /services/grading-status/ (autograder/classroom/status_page.py), for the
# instructors only: the role below gives them, and nobody else, access to it
                          {{"name": {page_name!r}, "url": "http://127.0.0.1:{page_port}", "command": {page!r},
                           "cwd": {repo!r}, "oauth_no_confirm": True, "display": True}}]
c.JupyterHub.load_roles = [{{"name": "grading-status-readers", "users": {instructors!r},
                            "scopes": ["access:services!service={page_name}"]}}]
'''


def grader_command(s, layout):
    """The grading service as JupyterHub starts it."""
    command = [sys.executable, "-m", "autograder", "serve", "--workspace", str(layout.course),
               "--workers", str(s.grading_workers)]
    if s.grading_cluster:
        command += ["--cluster", s.grading_cluster]
    if s.grading_scheduler:
        command += ["--scheduler", s.grading_scheduler]
    return command


def hub_config(s, layout):
    env = layout.env
    environment = {**contract.KERNEL_ENV, "PATH": f"{env}/bin:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": str(env),
                   "PYTHONPATH": str(layout.edition)}
    ssl = ""
    if s.ssl_cert or s.ssl_key:
        ssl = f"c.JupyterHub.ssl_cert = {s.ssl_cert!r}\nc.JupyterHub.ssl_key = {s.ssl_key!r}\n"
    text = HUB_CONFIG.format(ip=s.ip, port=s.port, hub_port=free_port(), api_port=free_port(), proxy=proxy_command(),
                             state=layout.hub, ssl=ssl, allowed={m.id for m in layout.members},
                             singleuser=str(env / "bin" / "jupyterhub-singleuser"), environment=environment,
                             roles={m.id: m.role for m in layout.members}, etc=str(layout.etc),
                             grader=grader_command(s, layout), repo=str(paths.ROOT),
                             kernel_env=dict(contract.KERNEL_ENV), page_name=status_page.NAME, page_port=free_port(),
                             page=[sys.executable, "-m", "autograder", "status-page", "--workspace",
                                   str(layout.course)],
                             instructors=sorted(m.id for m in layout.members if m.role == "instructor"))
    layout.hub_config.write_text(text)
    os.chmod(layout.hub_config, 0o600)


# ---------------------------------------------------------------------------------------------
def setup(s):
    """Everything the hub needs, idempotent; returns the Layout."""
    if os.geteuid() != 0:
        raise CourseError("the hub runs as root: it creates the roster's accounts and starts each user's server "
                          "as that user")
    members = roster.read(s.roster)
    prefix = Path(s.prefix).resolve()
    if prefix == paths.ROOT or paths.ROOT in prefix.parents:
        raise CourseError(f"--prefix {prefix} is inside the repository, which students must not reach; "
                          f"use e.g. /opt/archlab-hub")
    layout = Layout(prefix=prefix, course=prefix / "course", exchange=prefix / "exchange", edition=prefix / "edition",
                    env=Path(), etc=prefix / "etc", hub=prefix / "hub",
                    hub_config=prefix / "hub" / "jupyterhub_config.py",
                    passwords=prefix / "hub" / "initial-passwords.csv", members=members)
    db_url = check_db_url(s.db_url or f"sqlite:///{layout.course / 'gradebook.db'}")
    proxy_command()
    prefix.mkdir(parents=True, exist_ok=True)
    os.chmod(prefix, 0o755)
    layout.hub.mkdir(exist_ok=True)
    os.chmod(layout.hub, 0o700)

    studentenv.build_edition(layout.edition)
    layout.env = studentenv.environment(Path(s.envs or prefix / "envs"), s.python or None)
    ensure_accounts(members, s.instructors_group, layout.edition, layout.passwords, layout.course)
    close_repository(s.instructors_group)
    layout.exchange.mkdir(exist_ok=True)
    os.chmod(layout.exchange, 0o1777)
    make_course(s, layout, db_url, members)
    role_configs(s, layout)
    hub_config(s, layout)
    return layout


def serve(layout):
    """Replace this process with JupyterHub on the layout's configuration (Ctrl-C stops it)."""
    os.chdir(layout.hub)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    # Debian's proxy keeps its modules in /usr/share/nodejs, where Debian's node looks and
    # other builds of node (NodeSource's) do not
    env["NODE_PATH"] = os.pathsep.join(p for p in (env.get("NODE_PATH"), "/usr/share/nodejs") if p)
    os.execve(sys.executable, [sys.executable, "-m", "jupyterhub", "-f", str(layout.hub_config)], env)
