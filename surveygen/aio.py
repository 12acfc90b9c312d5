"""Running LLM jobs concurrently, the way every stage needs it.

The LLM client bounds how many calls are on the wire; stages simply start all their jobs.
What they share is the failure rule: an item whose calls keep failing (an ``LLMError``) is the
item's problem and is reported, while a fatal error (budget spent, key refused) stops the
run: no new call is sent, calls already on the wire finish (so what was paid for is kept), and
the error propagates. A cancellation (Ctrl-C) stops every job at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from surveygen.errors import BudgetExceeded, LLMError, LLMRejectedError

T = TypeVar("T")

# Most blocking jobs (downloads, PDF parsing) run in threads at once, like asyncio's default
# executor allows on a small machine.
MAX_THREADS = 6
_thread_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)

# Errors that end the run rather than one item.
FATAL: tuple[type[BaseException], ...] = (BudgetExceeded, LLMRejectedError)


async def gather_or_cancel(coros: Iterable[Awaitable[T]]) -> list[T]:
    """Await ``coros`` concurrently, results in order.

    On a fatal error (budget spent, key refused) the others are awaited, not cancelled: the
    LLM client sends no new request after such an error, so they end at once, except calls
    already on the wire, whose answers are paid for and get cached. On any other exception,
    or when the caller is cancelled (Ctrl-C), the others are cancelled and awaited. Then the
    exception propagates.
    """
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except FATAL:
        try:  # let them end; cancel them if this wait is itself cancelled
            await asyncio.gather(*tasks, return_exceptions=True)
        except BaseException:
            await _cancel_all(tasks)
            raise
        raise
    except BaseException:
        await _cancel_all(tasks)
        raise


class TaskScope:
    """Jobs started at different times and awaited where their results are needed, with
    :func:`gather_or_cancel`'s failure rule for all of them::

        async with TaskScope() as scope:
            a = scope.start(job_a())
            ...
            result = await a

    Leaving the block normally awaits any job not yet awaited. When the block raises a fatal
    error, the jobs still running are awaited (they send nothing new, calls on the wire
    finish); on any other exception or a cancellation they are cancelled and awaited.
    """

    def __init__(self) -> None:
        self.tasks: list[asyncio.Future[Any]] = []

    def start(self, coro: Awaitable[T]) -> asyncio.Future[T]:
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        return task

    async def __aenter__(self) -> TaskScope:
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            await gather_or_cancel(self.tasks)
        elif isinstance(exc, FATAL):
            try:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            except BaseException:
                await _cancel_all(self.tasks)
                raise
        else:
            await _cancel_all(self.tasks)


async def _cancel_all(tasks: list[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until they have ended."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def settle(job: Callable[[], Awaitable[T]]) -> T | LLMError:
    """``job()``'s result, or its LLMError when the error is the item's alone (fatal errors
    propagate)."""
    try:
        return await job()
    except FATAL:
        raise
    except LLMError as exc:
        return exc


async def run_items(
    items: Iterable[tuple[str, Callable[[], Awaitable[T]]]],
    progress: Any,  # what ui.stage() yields: advance() once per item
) -> tuple[dict[str, T], dict[str, str]]:
    """Run item jobs concurrently (the LLM client bounds the concurrency).

    An item whose calls keep failing is recorded in the failures and skipped. A fatal error
    (budget, refused key, unwritable output) cancels the other items and propagates.
    """
    results: dict[str, T] = {}
    failures: dict[str, str] = {}

    async def one(key: str, job: Callable[[], Awaitable[T]]) -> None:
        try:
            outcome = await settle(job)
        finally:
            progress.advance()
        if isinstance(outcome, LLMError):
            failures[key] = outcome.message
        else:
            results[key] = outcome

    await gather_or_cancel(one(key, job) for key, job in items)
    return results, failures


async def in_thread(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in a daemon thread, awaited; at most ``MAX_THREADS`` such
    threads per event loop.

    Unlike ``asyncio.to_thread``, a cancellation (Ctrl-C) returns at once: the thread is left
    to end by itself and nothing waits for it at exit, so a stalled download cannot hold the
    program. Such jobs must therefore only fetch or compute; whatever they produce is saved by
    the coroutine that awaited them.
    """
    loop = asyncio.get_running_loop()
    slots = _thread_slots.get(loop)
    if slots is None:
        slots = _thread_slots[loop] = asyncio.Semaphore(MAX_THREADS)
    await slots.acquire()  # given back when the thread ends, even after a cancellation
    future: asyncio.Future[T] = loop.create_future()

    def deliver(result: Any, error: BaseException | None) -> None:
        slots.release()
        if future.done():  # cancelled meanwhile
            return
        if isinstance(error, StopIteration):  # a future cannot hold one
            error = RuntimeError(f"{func!r} raised StopIteration")
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work() -> None:
        result, error = None, None
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:  # handed to the awaiting coroutine
            error = exc
        # A closed loop (RuntimeError) means nobody waits for this any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(deliver, result, error)

    try:
        threading.Thread(target=work, name="surveygen-io", daemon=True).start()
    except BaseException:
        slots.release()
        raise
    return await future
