"""The grading service's queue as a page of the hub, for the course's instructors only.

JupyterHub starts it as a second managed service, `grading-status`
(autograder.classroom.hub: `python -m autograder status-page --workspace <course>`), on a loopback
port that its proxy serves at `/services/grading-status/`. The page shows what
`python -m autograder status --live` prints (autograder.classroom.service.live_lines) and
refreshes itself every few seconds. Who may open it is JupyterHub's decision: the hub gives the
roster's instructors the scope `access:services!service=grading-status` and nobody else; a
student who opens the address is refused (403) after logging in through the hub (OAuth).
"""

import html
import os
import time
from urllib.parse import urlparse

from autograder.classroom import service
from autograder.errors import CourseError

NAME = "grading-status"
REFRESH_S = 5


def render(ws):
    """The page: the live status of the service on workspace `ws`, or why there is none."""
    try:
        lines = service.live_lines(ws)
    except CourseError as e:
        lines = [str(e)]
    body = html.escape("\n".join(lines))
    stamp = time.strftime("%H:%M:%S UTC", time.gmtime())
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<meta http-equiv='refresh' content='{REFRESH_S}'><title>Grading service</title>"
            "<style>body{font-family:sans-serif;margin:2em}pre{font-size:14px}</style></head><body>"
            f"<h1>Grading service</h1><p>As of {stamp}; this page refreshes every {REFRESH_S} s. "
            "The same as <code>python -m autograder status --live</code>.</p>"
            f"<pre id='status'>{body}</pre></body></html>")


def serve(ws):
    """Serve the page where JupyterHub says (its JUPYTERHUB_SERVICE_URL and _PREFIX) until stopped."""
    from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
    from jupyterhub.utils import url_path_join
    from tornado import ioloop, web

    class Page(HubOAuthenticated, web.RequestHandler):
        @web.authenticated
        def get(self):
            self.set_header("Cache-Control", "no-store")
            self.write(render(ws))

    url, prefix = os.environ.get("JUPYTERHUB_SERVICE_URL"), os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if not url or not prefix:
        raise CourseError("status-page is started by JupyterHub (python -m autograder hub), which tells it "
                          "where to listen; read the queue with python -m autograder status --live")
    app = web.Application([(prefix, Page), (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler)],
                          cookie_secret=os.urandom(32))
    where = urlparse(url)
    app.listen(where.port, where.hostname)
    ioloop.IOLoop.current().start()
