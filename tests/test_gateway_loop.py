"""The gateway's loop thread: a blocking call that is interrupted (Ctrl-C in `emafusion collect`) must not keep
running on the loop behind the caller's back. It did: the interrupted batch went on calling the provider while
the interpreter exited, and once in CI the process hung for over 120 s after printing "interrupted"."""
from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest

from emafusion_core.llm._loop import LoopThread


@pytest.fixture
def loop():
    thread = LoopThread("test-gateway")
    yield thread
    thread.close()


def _interrupt_after(seconds: float):
    """Raise KeyboardInterrupt in the main thread (where the blocking call waits) after `seconds`, as Ctrl-C."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return previous


def test_an_interrupted_call_is_cancelled_and_unwinds_before_the_interrupt_goes_on(loop):
    assert threading.current_thread() is threading.main_thread()
    events = []

    async def slow_call():
        try:
            events.append("started")
            await asyncio.sleep(30)
            events.append("finished")  # never: the caller was interrupted
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)  # the unwinding (a budget release, an HTTP abort) takes a moment
            events.append("unwound")
            raise

    previous = _interrupt_after(0.3)
    try:
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            loop.run(slow_call())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert events == ["started", "unwound"]  # unwound before run() re-raised
    assert time.monotonic() - started < 5
    assert loop.run(_tasks_left()) == 0  # nothing of the interrupted call is left on the loop


def test_the_wait_for_the_unwinding_is_bounded(loop):
    async def stubborn():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(30)  # ignores the hurry: run() must still give the interrupt back
            raise

    previous = _interrupt_after(0.2)
    try:
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            loop.run(stubborn(), cancel_wait_s=0.5)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 3


def test_a_call_that_ends_normally_returns_its_value(loop):
    async def answer():
        await asyncio.sleep(0.01)
        return 42

    assert loop.run(answer()) == 42


async def _tasks_left() -> int:
    return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])
