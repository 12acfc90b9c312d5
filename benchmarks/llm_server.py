"""The benchmark's model: the tests' OpenAI-compatible server and scripted answers, in a
process of its own (so its CPU time is not counted as surveygen's), with a latency model.

    python benchmarks/llm_server.py --latency 0.5 --per-token 0.005

prints ``http://127.0.0.1:PORT/v1`` on its first stdout line once it is listening, then
serves until stdin is closed or it is terminated. Each answer waits ``latency`` seconds plus
``per-token`` seconds per output token, like a real endpoint that streams its answer.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fakellm import FakeLLMServer
from scripted import pipeline_responder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per answer")
    parser.add_argument("--per-token", type=float, default=0.005, help="seconds per token out")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeLLMServer(pipeline_responder) as server:
        server.latency = (args.latency, args.per_token)
        print(server.base_url, flush=True)

        def wait_for_stdin() -> None:
            sys.stdin.read()  # returns when the benchmark closes the pipe (or dies)
            stop.set()

        threading.Thread(target=wait_for_stdin, daemon=True).start()
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
