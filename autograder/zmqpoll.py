"""Work around a lost wake-up in jupyter_client's asyncio channels (nbclient #312).

`AsyncZMQSocketChannel.get_msg(timeout)` awaits one `socket.poll(timeout)`. With two notebook
clients on a loaded 2-core machine we saw that poll miss a message that had already arrived:
the kernel was idle, the cell's output was in the socket, and the client waited out the whole
cell timeout (03's widget cell: 120 s, then a CellTimeoutError). Polling in short slices until
the same deadline re-checks the socket, so a missed wake-up costs at most one slice.

`install()` patches the class once per process; every entry point that runs notebooks
(autograder.course.execute, the grading runner, tests that call papermill themselves) calls it.
Nothing changes for a caller: the same deadline, `queue.Empty` only when it has passed.
"""

import time
from queue import Empty

SLICE_S = 0.5


def _sliced(original):
    async def get_msg(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SLICE_S if deadline is None else min(SLICE_S, max(0.0, deadline - time.monotonic()))
            try:
                return await original(self, timeout=left)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
    get_msg.archlab_sliced = True
    get_msg.__doc__ = original.__doc__
    return get_msg


def install():
    """Patch jupyter_client's async channel (idempotent). Returns True if it is patched."""
    try:
        from jupyter_client.channels import AsyncZMQSocketChannel
    except ImportError:            # no jupyter_client: nothing runs notebooks here
        return False
    if not getattr(AsyncZMQSocketChannel.get_msg, "archlab_sliced", False):
        AsyncZMQSocketChannel.get_msg = _sliced(AsyncZMQSocketChannel.get_msg)
    return True
