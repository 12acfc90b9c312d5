"""Waiting before a retry, shared by every client that talks to a server: the LLM endpoint
and arXiv. Pure functions; the callers own their loops and limits."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

__all__ = ["backoff_seconds", "retry_after_seconds"]


def retry_after_seconds(
    headers: Mapping[str, str] | None, now: float | None = None
) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be a number of seconds or an HTTP date (RFC 9110 §10.2.3).
    """
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_seconds(
    attempt: int, base: float, cap: float, retry_after: float | None, rng: random.Random
) -> float:
    """Exponential backoff with "equal jitter"; never shorter than what the server asked for."""
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, 600.0))
    return delay
