"""Background threads around a loop of forwards: a reader that prepares the next inputs, a writer that stores
the last outputs.

Both are one daemon thread with a bounded queue, so at most ``depth`` items wait in memory. An exception in
a thread is re-raised in the caller (the reader's at the next item, the writer's at the next ``put`` or at
``finish``); leaving the ``with`` block for any reason stops the thread and joins it, so nothing keeps running
or writing after an error. NumPy, zlib, HDF5 and hashlib release the GIL for large arrays, so this work overlaps
the forward, which waits on the GPU.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_POLL_S = 0.1  # how often a blocked thread looks at the stop flag
_DONE = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Prefetcher(Generic[T, R]):
    """``fn(item)`` for every item, in order, in a background thread, at most ``depth`` results ahead.

    Iterating yields ``(item, result, seconds fn took)``; the first exception of ``fn`` is raised there.
    """

    def __init__(self, fn: Callable[[T], R], items: Sequence[T], depth: int = 1, name: str = "healda-reader"):
        self._fn, self._items = fn, list(items)
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _put(self, obj: object) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(obj, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        for item in self._items:
            if self._stop.is_set():
                return
            t0 = time.perf_counter()
            try:
                out: object = (item, self._fn(item), time.perf_counter() - t0)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                self._put(_Failed(exc))
                return
            if not self._put(out):
                return
        self._put(_DONE)

    def __iter__(self) -> Iterator[tuple[T, R, float]]:
        self.start()
        while True:
            try:
                got = self._q.get(timeout=_POLL_S)
            except queue.Empty:
                if not self._thread.is_alive() and self._q.empty():
                    raise RuntimeError("the background reader has stopped") from None
                continue
            if got is _DONE:
                return
            if isinstance(got, _Failed):
                raise got.exc
            yield got

    def start(self) -> Prefetcher[T, R]:
        """Start the thread (once); entering the ``with`` block or iterating does it."""
        if self._thread.ident is None:
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread (it finishes the item in hand, then exits) and join it; drop waiting results."""
        self._stop.set()
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                break
        if self._thread.ident is not None:
            self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> Prefetcher[T, R]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class BackgroundWriter:
    """Calls ``fn(*args)`` for every :meth:`put`, in order, in a background thread (at most ``depth`` waiting).

    :meth:`finish` waits for every call and raises the first error; :meth:`close` (on leaving the ``with``
    block) stops without running what still waits. ``seconds`` lists the time of each finished call.
    """

    def __init__(self, fn: Callable[..., Any], depth: int = 2, name: str = "healda-writer"):
        self._fn = fn
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.seconds: list[float] = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                args = self._q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if args is _DONE:
                return
            t0 = time.perf_counter()
            try:
                self._fn(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                self._error = exc
                return
            finally:
                self._q.task_done()
            self.seconds.append(time.perf_counter() - t0)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, *args: Any) -> None:
        """Queue ``fn(*args)`` (blocks while ``depth`` calls wait); raises the thread's error, if any."""
        while True:
            self._check()
            if not self._thread.is_alive():
                raise RuntimeError("the background writer has stopped")
            try:
                self._q.put(args, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def drain(self) -> None:
        """Wait until every queued call has run (the thread stays); raise the first error."""
        while self._q.unfinished_tasks and self._thread.is_alive():
            time.sleep(0.005)
        self._check()

    def finish(self) -> None:
        """Wait for every queued call; raise the first error."""
        while self._thread.is_alive():
            try:
                self._q.put(_DONE, timeout=_POLL_S)
                break
            except queue.Full:
                continue
        self._thread.join()
        self._check()

    def close(self) -> None:
        """Stop now (the call in hand finishes; queued ones are dropped) and join the thread."""
        self._stop.set()
        self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
