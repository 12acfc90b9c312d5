"""Shared fixtures: a fake LLM server per test, and isolation from the user's environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakellm import FakeLLMServer
from scripted import pipeline_responder

# Proxy variables httpx honours; a proxy must never see (or break) calls to the fake server.
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


@pytest.fixture(autouse=True)
def _isolate_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Keep the user's keys, endpoints, proxies, cache and config out of every test.

    Removes every ``OPENAI_*`` variable (the client also reads ``OPENAI_ORG_ID``,
    ``OPENAI_PROJECT_ID``, ``OPENAI_CUSTOM_HEADERS``, ``OPENAI_LOG``), every ``SURVEYGEN_*``
    variable and the proxy variables, and points ``XDG_CACHE_HOME`` / ``XDG_CONFIG_HOME`` at
    fresh directories outside ``tmp_path``. ``HOME`` and the working directory are unchanged.
    """
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "SURVEYGEN_")) or name.lower() in _PROXY_VARS:
            monkeypatch.delenv(name, raising=False)
    # No test may reach the real arXiv: unless a test points it at its fake server, arXiv
    # is a closed local port (connection refused at once), with no pause between requests.
    monkeypatch.setenv("SURVEYGEN_ARXIV_URL", "http://127.0.0.1:9/api/query")
    monkeypatch.setenv("SURVEYGEN_ARXIV_DELAY", "0")
    xdg = tmp_path_factory.mktemp("xdg")
    for var, sub in (("XDG_CACHE_HOME", "cache"), ("XDG_CONFIG_HOME", "config")):
        (xdg / sub).mkdir()
        monkeypatch.setenv(var, str(xdg / sub))


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    """A FakeLLMServer answering every surveygen prompt as the scripted model does."""
    with FakeLLMServer(pipeline_responder) as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean working directory whose surveygen.toml makes retries fast (files that need
    other settings, or a fake arXiv, override this fixture)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "surveygen.toml").write_text(
        "retry_base_seconds = 0.01\nretry_max_seconds = 0.05\ntimeout = 5\n"
    )
    return tmp_path


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    """A started ``FakeLLMServer`` (see tests/fakellm.py), stopped after the test."""
    with FakeLLMServer() as server:
        yield server
