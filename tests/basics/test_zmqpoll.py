"""The client-side fix for nbclient's lost wake-up: a missed poll costs one slice, not the cell timeout."""

import asyncio
import time
from queue import Empty

import pytest

from autograder import zmqpoll


class MissedWakeUp:
    """A channel whose first poll misses a message that is already there (what we saw under load):
    it sleeps out whatever timeout it is given and raises Empty; later polls see the message."""

    def __init__(self, message=True):
        self.calls, self.message = [], message

    async def get_msg(self, timeout=None):
        self.calls.append(timeout)
        if len(self.calls) == 1 or not self.message:
            await asyncio.sleep(timeout)
            raise Empty
        return {"msg": "ok"}


def run(channel, timeout):
    patched = zmqpoll._sliced(type(channel).get_msg)
    t = time.monotonic()
    try:
        return asyncio.run(patched(channel, timeout=timeout)), time.monotonic() - t
    except Empty:
        return None, time.monotonic() - t


def test_a_missed_wake_up_costs_one_slice_not_the_timeout(monkeypatch):
    monkeypatch.setattr(zmqpoll, "SLICE_S", 0.05)
    reply, seconds = run(MissedWakeUp(), timeout=5)
    assert reply == {"msg": "ok"}
    assert seconds < 1, f"waited {seconds:.2f} s: the first poll's miss was not retried"


def test_nothing_arriving_still_raises_empty_at_the_deadline(monkeypatch):
    monkeypatch.setattr(zmqpoll, "SLICE_S", 0.05)
    channel = MissedWakeUp(message=False)
    reply, seconds = run(channel, timeout=0.3)
    assert reply is None
    assert 0.25 <= seconds < 1.5
    assert all(t <= 0.05 for t in channel.calls)


def test_install_patches_jupyter_client_once():
    pytest.importorskip("jupyter_client")
    from jupyter_client.channels import AsyncZMQSocketChannel
    assert zmqpoll.install()
    first = AsyncZMQSocketChannel.get_msg
    assert zmqpoll.install() and AsyncZMQSocketChannel.get_msg is first
    assert first.archlab_sliced
