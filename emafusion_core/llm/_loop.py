"""An event loop in a daemon thread, so synchronous callers (the Executor protocol, notebooks that already
run a loop) can use the async gateway without asyncio.run per call.

By default all clients share one such loop for the whole process: litellm keeps process-wide state bound to
the loop it last ran on (pooled HTTP clients, its logging worker), and a loop per call or per client makes
it hop between loops, warn, and leave tasks behind on closed loops."""
from __future__ import annotations

import asyncio
import threading
from typing import Awaitable, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "llm-gateway"):
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Awaitable[T], cancel_wait_s: float = 5.0) -> T:
        """Run `coro` on the loop and wait for it. If the wait is interrupted (Ctrl-C, or any exception raised
        in the waiting thread), the coroutine is cancelled and given up to `cancel_wait_s` to unwind (release
        budget reservations, abort its HTTP calls) before the exception goes on: an interrupted call never keeps
        running behind the caller's back, into the interpreter's exit."""
        loop = self._start()
        if threading.current_thread() is self._thread:
            raise RuntimeError("blocking gateway call from inside the gateway's own loop; await it instead")
        started, finished = threading.Event(), threading.Event()

        async def tracked() -> T:
            started.set()
            try:
                return await coro
            finally:
                finished.set()

        future = asyncio.run_coroutine_threadsafe(tracked(), loop)
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()  # a coroutine not yet started never starts; a started one gets CancelledError
                if started.is_set():
                    finished.wait(cancel_wait_s)
            raise

    def close(self) -> None:
        """Cancel what still runs on the loop (litellm parks a logging worker there), then stop it."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(_cancel_others(), loop).result(5)
        except Exception:  # noqa: BLE001 - shutting down regardless
            pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()


async def _cancel_others() -> None:
    current = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not current]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


_shared: LoopThread | None = None
_shared_lock = threading.Lock()


def shared_loop() -> LoopThread:
    """The process-wide gateway loop (started on first use, a daemon thread: it ends with the process)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LoopThread("llm-gateway")
        return _shared
