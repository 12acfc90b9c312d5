"""Running LLM jobs concurrently, the way every stage needs it.

The LLM client bounds how many calls are on the wire; stages simply start all their jobs.
What they share is the failure rule: an item whose calls keep failing (an ``LLMError``) is the
item's problem and is reported, while a fatal error (budget spent, key refused) stops the
run: no new call is sent, calls already on the wire finish (so what was paid for is kept), and
the error propagates. A cancellation (Ctrl-C) stops every job at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from surveygen.errors import BudgetExceeded, LLMError, LLMRejectedError

T = TypeVar("T")

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
        await _settle_all(tasks)
        raise
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _settle_all(tasks: list[asyncio.Future[Any]]) -> None:
    """Wait for ``tasks`` to end; cancel them if this wait is itself cancelled."""
    try:
        await asyncio.gather(*tasks, return_exceptions=True)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


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
