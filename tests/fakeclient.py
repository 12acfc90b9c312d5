"""Settings and an ``LLMClient`` pointed at a ``FakeLLMServer``, for the tests that drive a
stage directly rather than through the CLI. Fast retries, no answer cache, a seeded jitter;
each test passes what it needs to differ as overrides."""

from __future__ import annotations

import random
from typing import Any

from fakellm import FakeLLMServer

from surveygen.config import Settings
from surveygen.llm.cache import AnswerCache
from surveygen.llm.client import LLMClient
from surveygen.llm.ledger import Ledger, price_table


def fake_settings(server: FakeLLMServer, **overrides: Any) -> Settings:
    options: dict[str, Any] = dict(
        base_url=server.base_url,
        api_key="sk-test",
        model="fake-model",
        concurrency=4,
        timeout=10.0,
        max_tries=2,
        retry_base_seconds=0.01,
        retry_max_seconds=0.02,
        cache=False,
    )
    options.update(overrides)
    return Settings(**options)


def fake_client(
    server: FakeLLMServer,
    *,
    ledger: Ledger | None = None,
    cache: AnswerCache | None = None,
    log: list | None = None,
    **overrides: Any,
) -> LLMClient:
    return LLMClient(
        fake_settings(server, **overrides),
        ledger=ledger or Ledger(price_table(None)),
        cache=cache,
        log=log.append if log is not None else None,
        rng=random.Random(0),
    )
