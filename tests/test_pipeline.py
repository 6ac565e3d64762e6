"""The background reader and writer of healda_core.pipeline: order, bounded look-ahead, errors, shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from healda_core.pipeline import BackgroundWriter, Prefetcher


def _threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def test_prefetcher_yields_every_result_in_order_with_bounded_look_ahead():
    produced: list[int] = []
    consumed: list[int] = []
    ahead: list[int] = []

    def fn(i: int) -> int:
        produced.append(i)
        ahead.append(len(produced) - len(consumed))
        return i * i

    with Prefetcher(fn, range(20), depth=1) as reader:
        for item, result, seconds in reader:
            assert result == item * item and seconds >= 0
            consumed.append(item)
            time.sleep(0.002)  # a slow consumer: the producer must wait for it
    assert consumed == list(range(20))
    # one result waiting in the queue, one in hand: never more than 2 items ahead of the consumer
    assert max(ahead) <= 3
    assert not _threads("healda-reader")


def test_prefetcher_error_reaches_the_consumer_at_its_item_and_the_thread_ends():
    def fn(i: int) -> int:
        if i == 3:
            raise ValueError("bad item 3")
        return i

    seen = []
    with pytest.raises(ValueError, match="bad item 3"), Prefetcher(fn, range(10), depth=2) as reader:
        for item, _, _ in reader:
            seen.append(item)
    assert seen == [0, 1, 2]
    assert not _threads("healda-reader")


def test_prefetcher_stops_when_the_consumer_fails_while_it_waits_on_a_full_queue():
    started = threading.Event()

    def fn(i: int) -> int:
        started.set()
        return i

    with pytest.raises(RuntimeError, match="consumer"), Prefetcher(fn, range(1000), depth=1) as reader:
        it = iter(reader)
        next(it)
        started.wait(1)
        time.sleep(0.05)  # let the producer fill the queue and block on it
        assert _threads("healda-reader")
        raise RuntimeError("consumer failed")
    assert not _threads("healda-reader")


def test_writer_runs_calls_in_order_and_finish_waits_for_them():
    got = []
    with BackgroundWriter(lambda a, b: (time.sleep(0.001), got.append((a, b))), depth=2) as w:
        for i in range(15):
            w.put(i, -i)
        w.finish()
        assert got == [(i, -i) for i in range(15)] and len(w.seconds) == 15
    assert not _threads("healda-writer")


def test_writer_error_is_raised_at_the_next_put_or_at_finish():
    def fail_on_2(i: int) -> None:
        if i == 2:
            raise OSError("disk full")

    w = BackgroundWriter(fail_on_2, depth=1)
    with pytest.raises(OSError, match="disk full"), w:
        for i in range(100):
            w.put(i)
            time.sleep(0.005)
    assert not w.alive
    w2 = BackgroundWriter(fail_on_2, depth=8)
    with pytest.raises(OSError, match="disk full"), w2:
        for i in range(3):
            w2.put(i)
        w2.finish()
    assert not w2.alive


def test_writer_close_drops_queued_calls_and_joins():
    release = threading.Event()
    done = []

    def slow(i: int) -> None:
        release.wait(2)
        done.append(i)

    w = BackgroundWriter(slow, depth=3)
    for i in range(4):  # one in hand, three queued
        w.put(i)
    closer = threading.Thread(target=w.close)
    closer.start()
    while not w._stop.is_set():
        time.sleep(0.001)
    release.set()  # the call in hand ends after close() was asked for
    closer.join(5)
    assert not closer.is_alive() and not w.alive and done == [0]


def test_writer_drain_waits_for_every_queued_call_and_keeps_the_thread():
    got = []
    with BackgroundWriter(lambda i: (time.sleep(0.01), got.append(i)), depth=4) as w:
        for i in range(4):
            w.put(i)
        w.drain()
        assert got == [0, 1, 2, 3] and w.alive
        w.put(4)
        w.finish()
    assert got == [0, 1, 2, 3, 4]


def test_writer_drain_raises_the_error_of_a_queued_call():
    def fail(i: int) -> None:
        raise OSError(f"disk full at {i}")

    with pytest.raises(OSError, match="disk full at 0"), BackgroundWriter(fail, depth=2) as w:
        w.put(0)
        w.drain()

