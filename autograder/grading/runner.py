"""Execute one prepared submission in a jailed kernel and judge each graded test cell.

Before every test cell the grader calls the in-kernel guard (autograder/grading/kernel_guard.py)
through `user_expressions` of an empty execute request: that path does not go through
IPython's input or AST transformers, so student code cannot rewrite the call. The guard puts
back what student code changed and reports it. A test cell passes when its execute reply is
"ok" and the guard answered; anything else scores 0.
"""

import ast
import asyncio
import atexit
import json
import queue
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from autograder import contract, zmqpoll
from autograder.grading import sandbox
from autograder.grading.results import TestResult

zmqpoll.install()

GUARD_SOURCE = (Path(__file__).with_name("kernel_guard.py")).read_text()
MEMORY_SIGNS = ("MemoryError", "can't allocate memory", "not enough memory", "Cannot allocate memory")
DISK_SIGNS = ("No space left on device", "[Errno 28]")   # ENOSPC: a tmpfs of the jail is full
GUARD_SECONDS = 30   # how long the grader waits for the guard's answer


class KernelSilent(Exception):
    """The kernel did not answer a guard call (`expression`) within GUARD_SECONDS."""

    def __init__(self, expression):
        super().__init__(f"no answer to {expression} within {GUARD_SECONDS} s")
        self.expression = expression


@dataclass
class RunResult:
    status: str = "graded"     # graded | failed
    reason: str = ""
    flags: list = field(default_factory=list)
    tests: list = field(default_factory=list)
    seconds: float = 0.0


class GradingClient(NotebookClient):
    def __init__(self, nb, km, prepared, limits, **kw):
        super().__init__(nb, km=km, timeout=limits.cell_seconds, allow_errors=True,
                         interrupt_on_timeout=False, startup_timeout=60, **kw)
        self.prepared, self.limits = prepared, limits
        self.replies, self.guard_reports, self.output_bytes, self.truncated = {}, {}, 0, False
        self.snapshot_ok = False
        self.hidden = {}       # test grade_id -> (hidden checks, passed, "visible"/"hidden"/"" first failure)
        self.on_cell_executed = self._record_reply

    def _record_reply(self, cell, cell_index, execute_reply):
        self.replies[cell_index] = execute_reply["content"]["status"]

    async def _guard(self, expression):
        msg_id = self.kc.execute("", silent=True, store_history=False, user_expressions={"g": expression})
        deadline = time.monotonic() + GUARD_SECONDS
        while time.monotonic() < deadline:
            try:
                reply = await self.kc.get_shell_msg(timeout=GUARD_SECONDS)
            except queue.Empty:      # nothing at all on the shell channel: the kernel does not answer
                raise KernelSilent(expression) from None
            if reply["parent_header"].get("msg_id") == msg_id:
                result = reply["content"].get("user_expressions", {}).get("g", {})
                if result.get("status") != "ok":
                    return None
                return ast.literal_eval(result["data"]["text/plain"])
        return None

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        gid = contract.grade_id(cell)
        if gid in self.prepared.test_ids:
            self.guard_reports[gid] = await self._guard(f"_archlab_guard_check({gid!r})")
        pieces = contract.test_pieces(cell.source) if gid in self.prepared.test_ids else None
        if pieces:
            cell = await self._execute_in_pieces(gid, cell, cell_index, pieces, execution_count, store_history)
        else:
            cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if cell_index == 0:   # the guard's own cell ran: record the pristine state now
            self.snapshot_ok = await self._guard("_archlab_guard_snapshot()") is True
        if gid in self.prepared.given_names:
            await self._guard(f"_archlab_guard_remember({self.prepared.given_names[gid]!r})")
        return cell

    async def _execute_in_pieces(self, gid, cell, cell_index, pieces, execution_count, store_history):
        """A test cell run piece by piece (contract.test_pieces): its visible part, then each hidden
        check. The first visible failure ends the cell, as it would run whole; after a hidden
        failure the other hidden checks still run, to be counted. The outputs of every piece go
        into the cell, so nbgrader scores it as it would the whole cell (any error: 0 points)."""
        cell.outputs, statuses, first_failure = [], [], ""
        for kind, source in pieces:
            part = nbformat.v4.new_code_cell(source, metadata=cell.metadata)
            part = await super().async_execute_cell(part, cell_index, execution_count, store_history)
            cell.outputs.extend(part.outputs)
            cell.execution_count = part.execution_count
            ok = self.replies.get(cell_index) == "ok"
            statuses.append((kind, ok))
            first_failure = first_failure or ("" if ok else kind)
            if not ok and kind == contract.VISIBLE:
                break
        self.nb.cells[cell_index] = cell
        ran_all = len(statuses) == len(pieces)
        self.replies[cell_index] = "ok" if ran_all and all(ok for _, ok in statuses) else "error"
        hidden = [ok for kind, ok in statuses if kind == contract.HIDDEN]
        self.hidden[gid] = (sum(k == contract.HIDDEN for k, _ in pieces), sum(hidden), first_failure)
        return cell

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {})))
        self.output_bytes += size
        if self.output_bytes > self.limits.output_bytes:
            self.truncated = True
            return None
        return super().output(outs, msg, display_id, cell_index)


MESSAGE_CHARS = 2000   # the whole diagnosis of a check (its mismatch lines included), not a page of it


def _first_error(cell):
    """The test cell's first error, "Type: message" in full ("" when it has none)."""
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return f"{o.get('ename')}: {str(o.get('evalue', '')).strip()}"
    return ""


def _message(cell):
    """What the student reads: the failing check's exception type and its whole message."""
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            text = str(o.get("evalue", "")).strip()
            if len(text) > MESSAGE_CHARS:
                text = text[:MESSAGE_CHARS] + " [...]"
            return f"{o.get('ename')}: {text}" if text else f"{o.get('ename')} (a check failed without a message)"
    return "the test cell did not finish"


def _threads_preamble(threads):
    """torch's inter-op pool reads no environment variable: size it before anything uses it.
    (Its intra-op pool, OpenMP, MKL and numba follow the variables of sandbox.kernel_env.)"""
    if threads is None:
        return ""
    return (f"try:\n    import torch as _t\n    _t.set_num_interop_threads({int(threads)})\n"
            f"except Exception:\n    pass\nfinally:\n    _t = None\n    del _t\n")


async def _execute(prepared, workdir, limits, isolate):
    nb = prepared.notebook
    guard_cell = nbformat.v4.new_code_cell(_threads_preamble(limits.threads) + GUARD_SOURCE)
    nb.cells.insert(0, guard_cell)
    km = sandbox.kernel_manager(workdir, limits, isolate)
    client = GradingClient(nb, km, prepared, limits)
    result = RunResult()
    try:
        async with client.async_setup_kernel():
            # nbclient's exit hook would shut this kernel down from the main thread at exit, while the
            # thread that grades may still use its sockets; the grader kills its own kernels
            atexit.unregister(client._cleanup_kernel)
            km.seal()   # it answers: from now on it writes only into its own (capped) folder
            try:
                await asyncio.wait_for(_run_all(client), timeout=limits.notebook_seconds)
            except CellTimeoutError:   # a subclass of TimeoutError: catch it first
                result.status = "failed"
                result.reason = f"a cell ran longer than {limits.cell_seconds} s (infinite loop?)"
            except TimeoutError:
                result.status, result.reason = "failed", f"the notebook ran longer than {limits.notebook_seconds} s"
            except DeadKernelError:
                result.status, result.reason = "failed", "the kernel died (os._exit, a crash, or the CPU/memory limit)"
            except KernelSilent as e:
                _kernel_silent(result, e)
            full = km.full_spaces()   # while the kernel runs: its tmpfs go with it
    finally:
        try:
            await km.shutdown_kernel(now=True)
        except Exception:
            pass
    nb.cells.pop(0)
    if result.status == "graded":
        reason = disk_reason(full, [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells
                                    for o in c.get("outputs", []) if o.get("output_type") == "error"], isolate)
        if reason:
            result.status, result.reason = "failed", reason
    return client, result


def _kernel_silent(result, error):
    """The kernel stopped answering the guard. Before any submission code ran, that is the grader's
    problem (raised: a grader error, graded again next run); after, it is the submission's: a trace
    function (sys.settrace) that sleeps or a blocked interpreter. The notebook stops there."""
    check = re.match(r"_archlab_guard_check\('([^']*)'\)", error.expression)
    if error.expression.startswith("_archlab_guard_snapshot"):
        raise RuntimeError(f"the kernel did not answer the grader's guard within {GUARD_SECONDS} s "
                           f"before any submission code ran") from None
    when = f"before {check.group(1)}" if check else "after a locked cell"
    result.status = "failed"
    result.reason = (f"the kernel stopped answering the grader {when} (a trace function or a blocked "
                     f"interpreter: sys.settrace?)")
    result.flags.append(f"the kernel did not answer the grading guard {when} within {GUARD_SECONDS} s; "
                        f"the notebook was stopped there")


def _mib(size):
    return f"{size / 2**20:g} MiB"


def disk_reason(full, errors, isolate):
    """Why a jailed submission failed on a disk limit ("" if it did not): `full` is the kernel
    manager's full_spaces() [(where, size)], read while the kernel ran; failing that (the kernel
    was gone), an ENOSPC in an error output `errors` ("ename: evalue" strings). Unjailed there is
    no limit, and a full disk is the machine's, not the submission's."""
    if not isolate:
        return ""
    if full:
        where, size = full[0]
        return f"the submission wrote more than {_mib(size)} into {where} (the disk limit)"
    if any(sign in text for text in errors for sign in DISK_SIGNS):
        return "the submission wrote more than its disk limit allows (No space left on device)"
    return ""


class _GradingLoop(asyncio.SelectorEventLoop):
    """The grading client's event loop takes no signal handlers. nbclient asks it for SIGINT and
    SIGTERM, and its handler only shuts the kernel down: the cell then fails as "the kernel died"
    and the batch goes on. The process that grades decides what a signal does (autograder.pool,
    autograder.autograde); refused, nbclient goes on as it does outside the main thread."""

    def add_signal_handler(self, sig, callback, *args):
        raise RuntimeError("signals are the grader's to handle, not the notebook client's")

    def remove_signal_handler(self, sig):
        return False


async def _run_all(client):
    for index, cell in enumerate(client.nb.cells):
        await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)


def where_unknown(source):
    """Which part of a test cell failed when the grader cannot tell (the cell ran whole, never ran,
    or failed only by writing to stderr): hidden if the cell has a hidden region at all, so that
    feedback before the deadline never shows a message that may be a hidden check's."""
    return contract.HIDDEN if contract.hidden_lines(source) else contract.VISIBLE


def run(prepared, workdir, limits=None, isolate=True):
    """Execute and judge; returns (RunResult, executed notebook)."""
    limits = limits or sandbox.Limits()
    t0 = time.perf_counter()
    workdir = sandbox.prepare_workdir(workdir, isolate)
    with asyncio.Runner(loop_factory=_GradingLoop) as loop:
        client, result = loop.run(_execute(prepared, workdir, limits, isolate))
    nb = client.nb
    result.flags = list(prepared.flags) + result.flags   # the scan's, then the run's
    for gid, report in client.guard_reports.items():
        for what in (report or {}).get("repaired", []):
            result.flags.append(f"changed the grading environment before {gid}: {what} (put back)")
    if client.truncated:
        result.flags.append(f"output larger than {limits.output_bytes} bytes (truncated)")
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    out_of_memory = any(any(s in f"{o.get('ename')} {o.get('evalue')}" for s in MEMORY_SIGNS) for o in errors)
    if result.status == "graded" and out_of_memory:
        result.status, result.reason = "failed", "the memory limit was reached"
    guard_broken = not client.snapshot_ok and result.status == "graded"
    if guard_broken:
        result.flags.append("the grading guard could not start; tests score 0")
    for index, cell in enumerate(nb.cells):
        gid = contract.grade_id(cell)
        if gid not in prepared.test_ids:
            continue
        ran = index + 1 in client.replies   # the guard cell was index 0 while executing
        report = client.guard_reports.get(gid)
        if ran and report is None and not guard_broken:
            guard_broken = True
            result.flags.append(f"the grading guard was removed or broken before {gid}; later tests score 0")
        # nbgrader scores a test cell 0 if it printed to stderr; say so instead of "passed"
        stderr = [o for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr"]
        passed = ran and client.replies[index + 1] == "ok" and not guard_broken and not stderr
        if not passed and not any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            cell.setdefault("outputs", []).append(nbformat.v4.new_output(
                "error", ename="NotGraded", evalue="this test did not run to completion", traceback=[]))
        message = "" if passed else _message(cell)
        if stderr and ran and client.replies[index + 1] == "ok":
            first = (str(stderr[0].get("text", "")).strip().splitlines() or [""])[0][:200]
            message = f"the test cell wrote to stderr, which counts as a failure: {first}"
        n_hidden, hidden_passed, failed_in = client.hidden.get(gid, (0, 0, ""))
        if not passed and not failed_in:     # ran whole, never ran, or failed only by writing to stderr
            failed_in = where_unknown(cell.get("source", "")) if ran else contract.VISIBLE   # never ran: says so
        # which named mistake: read from the instructor's test cell (the executed cell is it), never
        # from anything the submission declares
        mistake = "" if passed else contract.recognise(cell.get("source", ""), _first_error(cell) or message,
                                                       prepared.assignment, gid)
        result.tests.append(TestResult(gid, passed, message, contract.test_description(cell.get("source", "")),
                                       points=float(contract.points(cell)), hidden=n_hidden,
                                       hidden_passed=hidden_passed,
                                       failed_in="" if passed else failed_in, mistake=mistake))
    result.seconds = time.perf_counter() - t0
    return result, nb
