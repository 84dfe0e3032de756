"""Memory of one active student on the course hub: where one server stops scaling.

What the hub runs for a student is their server (jupyterhub-singleuser: a Jupyter server with
JupyterLab and nbgrader's extensions) and a kernel per open notebook, both in the students'
environment, as the student's account. This script runs exactly those processes for a
throw-away account (removed afterwards), without the hub in front:

1. the server, idle after start: its resident memory (VmRSS) and proportional share (Pss);
2. for each notebook: a kernel that runs the student notebook with every answer filled in
   (QUICK, as students run it first), its peak resident memory (VmHWM) and the wall time.

Results: scripts/results/hub_memory-<machine>.json and .md, with the machine's description.
Run as root on a quiet machine:  .venv/bin/python scripts/hub_memory.py [ID ...]
"""

import json
import os
import platform
import pwd
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import nbformat  # noqa: E402

import hub_helpers  # noqa: E402
import nbtools  # noqa: E402
from autograder import contract, paths  # noqa: E402
from autograder.classroom import hub, studentenv  # noqa: E402

RUN_KERNEL = r"""
import json, sys, time
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
client = NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=False)
t0 = time.perf_counter()
with client.setup_kernel():
    for i, cell in enumerate(nb.cells):
        client.execute_cell(cell, i)
    pid = client.km.provisioner.pid
    status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status").read().splitlines() if ":" in l)
    kb = lambda k: int(status[k].split()[0])
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak_rss_mib": kb("VmHWM") / 1024,
                      "rss_after_mib": kb("VmRSS") / 1024}))
"""


def kib(pid, key, file="status"):
    for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(Path("/proc/meminfo").read_text().split()[1])   # MemTotal, kB
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**20, 1),
            "python": platform.python_version(), "load_average_at_start": os.getloadavg()}


def main(ids):
    if os.geteuid() != 0:
        raise SystemExit("run as root: the processes run as a throw-away student account")
    ids = ids or paths.present_assignments()
    env = studentenv.environment(Path(os.environ.get("ARCHLAB_HUB_ENVS", "/var/cache/archlab-hub/envs")))
    user = "mem" + secrets.token_hex(3)
    edition = Path(tempfile.mkdtemp(prefix="archlab-edition-", dir="/var/tmp"))
    os.chmod(edition, 0o755)
    studentenv.build_edition(edition / "e")
    subprocess.run(["useradd", "--create-home", "--user-group", user], check=True)
    home = Path(pwd.getpwnam(user).pw_dir)
    uenv = {"HOME": str(home), "USER": user, "PATH": f"{env}/bin:/usr/bin:/bin", "PYTHONPATH": str(edition / "e"),
            **contract.KERNEL_ENV}
    run_as = ["runuser", "-u", user, "--", "env", "-i", *[f"{k}={v}" for k, v in uenv.items()]]
    result = {"machine": machine(), "environment": str(env), "server": {}, "notebooks": {}}
    server = None
    try:
        port, token = hub.free_port(), secrets.token_hex(16)
        server = subprocess.Popen(run_as + ["jupyter-lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
                                            f"--ServerApp.token={token}"], cwd=home, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        time.sleep(5)
        pids = [int(p) for p in subprocess.run(["pgrep", "-u", user, "-f", "jupyter-lab"], capture_output=True,
                                               text=True).stdout.split()]
        result["server"] = {"rss_mib": sum(kib(p, "VmRSS") for p in pids) / 1024,
                            "pss_mib": sum(kib(p, "Pss", "smaps_rollup") for p in pids) / 1024}
        print("server", result["server"], flush=True)
        script = home / "run_kernel.py"
        script.write_text(RUN_KERNEL)
        for a in ids:
            nb = nbtools.submission(nbtools.release_nb(a), nbtools.solution_answers(a))
            path = home / a / f"{a}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
            subprocess.run(["chown", "-R", f"{user}:{user}", str(home)], check=True)
            r = subprocess.run(run_as + ["python", str(script), str(path)], cwd=path.parent, capture_output=True,
                               text=True)
            if r.returncode:
                result["notebooks"][a] = {"error": (r.stderr.strip().splitlines() or ["?"])[-1][:300]}
            else:
                result["notebooks"][a] = json.loads(r.stdout.strip().splitlines()[-1])
            print(a, result["notebooks"][a], flush=True)
    finally:
        if server is not None:
            os.killpg(server.pid, 15)
            server.wait(30)
        uid = pwd.getpwnam(user).pw_uid
        for pid in hub_helpers.user_pids({uid}):    # only this throw-away account's processes, by pid
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        subprocess.run(["userdel", "--remove", user], capture_output=True)
        subprocess.run(["rm", "-rf", str(edition)])
    write(result)


def write(result):
    out = ROOT / "scripts" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = "hub_memory-" + "".join(c if c.isalnum() else "-" for c in result["machine"]["cpu"])[:60].strip("-")
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    m, s = result["machine"], result["server"]
    ok = [v for v in result["notebooks"].values() if "peak_rss_mib" in v]
    worst = max((v["peak_rss_mib"] for v in ok), default=0)
    per_student = s.get("rss_mib", 0) + worst
    lines = [f"# Memory of one active student on the hub ({m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; "
             f"load average at start {m['load_average_at_start'][0]:.1f})", "",
             "Command: `.venv/bin/python scripts/hub_memory.py` (as root)", "",
             f"Student server idle (jupyterhub-singleuser = Jupyter server + JupyterLab + nbgrader): "
             f"RSS {s.get('rss_mib', 0):.0f} MiB, PSS {s.get('pss_mib', 0):.0f} MiB", "",
             "| notebook | kernel peak RSS (MiB) | run time QUICK (s) |", "| --- | --- | --- |"]
    for a, v in result["notebooks"].items():
        lines.append(f"| {a} | {v.get('peak_rss_mib', float('nan')):.0f} | {v.get('seconds', float('nan')):.0f} |"
                     if "peak_rss_mib" in v else f"| {a} | error: {v['error']} | |")
    if ok:
        fits = int(m["memory_gib"] * 1024 * 0.8 // per_student)
        lines += ["", f"One active student (server + the largest kernel): about {per_student:.0f} MiB. Keeping "
                      f"20 % of this machine's memory for the system, the hub and grading, about {fits} students can "
                      f"have a notebook running at once; CPU runs out first when many run cells together "
                      f"({m['cores']} cores)."]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
