"""surveygen.aio: blocking work in threads that a cancellation does not wait for."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from surveygen import aio


def test_in_thread_returns_results_and_raises_errors_of_the_function() -> None:
    def divide(a: int, b: int = 1) -> float:
        return a / b

    async def main() -> tuple[float, BaseException]:
        result = await aio.in_thread(divide, 6, b=3)
        try:
            await aio.in_thread(divide, 1, b=0)
        except ZeroDivisionError as exc:
            return result, exc
        raise AssertionError("no error")

    result, error = asyncio.run(main())
    assert result == 2.0 and isinstance(error, ZeroDivisionError)


def test_a_cancelled_wait_returns_at_once_and_the_thread_is_not_joined() -> None:
    release = threading.Event()

    async def main() -> float:
        task = asyncio.ensure_future(aio.in_thread(release.wait, 30))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    started = time.monotonic()
    waited = asyncio.run(main())  # asyncio.run would wait 30 s for a default-executor job
    assert waited < 1 and time.monotonic() - started < 5
    release.set()


def test_at_most_max_threads_run_at_once() -> None:
    # Each job waits at a barrier for MAX_THREADS - 1 others: with fewer running at once the
    # barrier times out, and more at once shows in the peak.
    barrier = threading.Barrier(aio.MAX_THREADS, timeout=10)
    running, peak = 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        barrier.wait()
        with lock:
            running -= 1

    async def main() -> None:
        await asyncio.gather(*(aio.in_thread(work) for _ in range(3 * aio.MAX_THREADS)))

    asyncio.run(main())
    asyncio.run(main())  # a second loop gets its own slots
    assert peak == aio.MAX_THREADS


def test_a_thread_keeps_its_slot_until_it_ends_even_when_its_wait_is_cancelled() -> None:
    release = threading.Event()
    started = threading.Semaphore(0)

    def block() -> None:
        started.release()
        release.wait(10)

    async def main() -> bool:
        waits = [asyncio.ensure_future(aio.in_thread(block)) for _ in range(aio.MAX_THREADS)]
        for _ in range(aio.MAX_THREADS):
            await asyncio.to_thread(started.acquire)
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        late = asyncio.ensure_future(aio.in_thread(lambda: "ran"))
        await asyncio.sleep(0.1)
        blocked = not late.done()  # every slot is still held by a running thread
        release.set()
        return blocked and await late == "ran"

    assert asyncio.run(main())


def test_stop_iteration_from_the_job_is_an_error_not_a_hang() -> None:
    async def main() -> BaseException:
        try:
            await asyncio.wait_for(aio.in_thread(next, iter([])), timeout=5)
        except RuntimeError as exc:
            return exc
        raise AssertionError("no error")

    assert "StopIteration" in str(asyncio.run(main()))
