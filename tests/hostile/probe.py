"""An isolation probe: a submission of notebook 01 (correct answers) with one extra cell that
tries, from inside the grading kernel, everything the jail must forbid, and asserts that none
of it worked. It prints one line, `PROBE {json}`: the violations it found and what it saw (its
uid, the network error, the thread limits of torch, OpenMP, MKL and numba as the libraries
report them inside the kernel).

    build(root, ws, outside, port) -> (notebook, targets)

`port` is a listener the test opens on the host's loopback; `targets` are the paths the probe
tries to read (each must exist on the host, or the probe proves nothing) and to write.
"""

import copy
import uuid

import nbformat

import nbtools

NB = "01_self_attention"

PROBE = r'''
# isolation probe (tests/hostile/probe.py)
import json as _json, os as _os, re as _re, socket as _socket
_violations, _seen = [], {"uid": _os.getuid(), "euid": _os.geteuid()}
if _os.getuid() == 0 or _os.geteuid() == 0:
    _violations.append("runs as root")
try:
    with _socket.create_connection(("127.0.0.1", PORT), timeout=5) as _c:
        _c.sendall(b"probe")
    _violations.append("connected to the host's loopback")
except OSError as _e:
    _seen["network"] = f"{type(_e).__name__}: {_e}"
for _p in READS:
    try:
        if _os.path.isdir(_p):
            _os.listdir(_p)
        else:
            with open(_p, "rb") as _f:
                _f.read(1)
        _violations.append(f"read {_p}")
    except OSError:
        pass
for _p in WRITES:
    try:
        with open(_p, "w") as _f:
            _f.write("probe")
        _violations.append(f"wrote {_p}")
    except OSError:
        pass
with open("probe-own-folder.txt", "w") as _f:   # its own folder must stay writable
    _f.write("ok")
import torch as _torch, numba as _numba
_info = _torch.__config__.parallel_info()
_seen["threads"] = {
    "torch": _torch.get_num_threads(),
    "torch_interop": _torch.get_num_interop_threads(),
    "openmp": int(_re.search(r"omp_get_max_threads\(\) : (\d+)", _info).group(1)),
    "mkl": int(_re.search(r"mkl_get_max_threads\(\) : (\d+)", _info).group(1)),
    "numba": _numba.get_num_threads(),
}
print("PROBE " + _json.dumps({"violations": _violations, "seen": _seen}))
assert not _violations, f"isolation lost: {_violations}"
'''


def build(root, ws, outside, port):
    """The probe submission and {"reads": [...], "writes": [...]} for the test to check."""
    tag = uuid.uuid4().hex[:8]
    reads = [root / "solutions" / NB / f"{NB}.ipynb", root / "tests", root / ".git",
             ws / "gradebook.db", ws / "submitted"]
    writes = [ws / f"PROBE-{tag}", ws / "run" / f"PROBE-{tag}", outside / f"PROBE-{tag}",
              root / "archlab" / f".PROBE-{tag}"]
    source = (PROBE.replace("PORT", str(port)).replace("READS", repr([str(p) for p in reads]))
              .replace("WRITES", repr([str(p) for p in writes])))
    nb = nbtools.submission(nbtools.release_nb(NB), nbtools.solution_answers(NB))
    nb = copy.deepcopy(nb)
    nb.cells.insert(1, nbformat.v4.new_code_cell(source))
    return nb, {"reads": reads, "writes": writes}


def report(executed_path):
    """The probe's report from the executed notebook: {"violations": [...], "seen": {...}}."""
    import json
    nb = nbformat.read(executed_path, as_version=4)
    for c in nb.cells:
        for o in c.get("outputs", []):
            for line in str(o.get("text", "")).splitlines():
                if line.startswith("PROBE "):
                    return json.loads(line[len("PROBE "):])
    raise AssertionError(f"the probe printed no report in {executed_path}")


class Listener:
    """A TCP listener on the host's loopback, counting the connections it accepts."""

    def __init__(self):
        import socket
        import threading
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def remove_written(targets):
    """Delete whatever a probe managed to write (it only can when isolation is lost)."""
    for p in targets["writes"]:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


KILLER = r'''
# kills the process that grades it (tests/hostile/probe.py): only possible without the jail
import os as _os, signal as _signal
if _os.getppid() not in (TEST_PID, 0, 1):
    _os.kill(_os.getppid(), _signal.SIGKILL)
'''


def worker_killer(test_pid):
    """A submission that kills its kernel's parent, the worker process grading it, every time
    it runs (never the test process itself, when that grades in-process)."""
    nb = nbtools.submission(nbtools.release_nb(NB), nbtools.solution_answers(NB))
    nb.cells.insert(1, nbformat.v4.new_code_cell(KILLER.replace("TEST_PID", str(test_pid))))
    return nb
