"""A scripted "model" for the ``surveygen ask`` prompts (map, collapse, reduce).

Each answer is built from what the prompt really contains: map answers quote real sentences
of the part they are shown, collapse and reduce answers carry the evidence of the findings they
are given. It misbehaves on purpose in ways ``ask`` must absorb: every map answer adds one
fabricated quote (verification must drop it) and the final answer cites one key that is not in
the library (the citation guard must remove it).
"""

from __future__ import annotations

import json
import re
import zlib

FAKE_KEY = "invented2099paper"
FABRICATED_QUOTE = "our method triples accuracy on every benchmark ever published"

MAP_TASK = "Task: find what this part of the library says about the question"
COLLAPSE_TASK = "Task: merge the findings above into one set of findings"
REDUCE_TASK = "Task: write the final answer to the question from the findings above"

_PART = re.compile(r"<<<library part\n(.*?)\n>>>", re.S)
_SENTENCE = re.compile(r"^\[(\S+) s(\d+)\] (.+)$", re.M)
_EVIDENCE = re.compile(r'^- \[(\S+) s(\d+)\] "(.*)"$', re.M)
_CONFIDENCE = re.compile(r"^confidence: (\d)$", re.M)


def _text(body: dict) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []))


def _evidence(text: str) -> list[dict]:
    """The distinct evidence items listed in the findings of a collapse or reduce prompt."""
    items: dict[tuple[str, str], dict] = {}
    for key, sentence, quote in _EVIDENCE.findall(text):
        items.setdefault((key, quote), {"key": key, "sentence": int(sentence), "quote": quote})
    return list(items.values())


def map_answer(body: dict) -> str:
    part = _PART.search(_text(body))
    assert part, "ask map prompt has no fenced library part"
    sentences = _SENTENCE.findall(part.group(1))
    assert sentences, "ask map prompt shows no labelled sentences"
    evidence = [
        {"key": key, "sentence": int(n), "quote": " ".join(sentence.split()[:12])}
        for key, n, sentence in sentences[:2]
    ]
    first_key = sentences[0][0]
    evidence.append({"key": first_key, "sentence": int(sentences[0][1]), "quote": FABRICATED_QUOTE})
    confidence = 2 + zlib.crc32(part.group(1).encode()) % 4  # 2-5, stable per part
    return json.dumps(
        {
            "extracted_information": f"The part discusses {first_key} and its method.",
            "evidence": evidence,
            "rationale": "The quoted sentences describe the approach the question asks about.",
            "answer": f"The papers describe a retrieval-based approach [@{first_key}].",
            "confidence": confidence,
        }
    )


def collapse_answer(body: dict) -> str:
    text = _text(body)
    evidence = _evidence(text)[:12]
    assert evidence, "ask collapse prompt carries no evidence"
    confidences = [int(c) for c in _CONFIDENCE.findall(text)]
    keys = list(dict.fromkeys(e["key"] for e in evidence))
    return json.dumps(
        {
            "extracted_information": "Several papers describe retrieval-based approaches.",
            "evidence": evidence,
            "rationale": "The findings agree; the most confident one is followed.",
            "answer": "Retrieval helps " + " ".join(f"[@{k}]" for k in keys) + ".",
            "confidence": max(confidences),
        }
    )


def reduce_answer(body: dict) -> str:
    text = _text(body)
    evidence = _evidence(text)[:12]
    assert evidence, "ask reduce prompt carries no evidence"
    keys = list(dict.fromkeys(e["key"] for e in evidence))
    cites = "; ".join(f"@{k}" for k in keys)
    answer = (
        f"The library describes retrieval-augmented methods [{cites}]. "
        f"One paper reports a tenfold speed-up [@{FAKE_KEY}]."
    )
    return json.dumps({"answer": answer, "evidence": evidence, "confidence": 4})


def answer(body: dict) -> str | None:
    """The scripted answer to an ask prompt, recognised by its task line; None otherwise."""
    text = _text(body)
    if MAP_TASK in text:
        return map_answer(body)
    if COLLAPSE_TASK in text:
        return collapse_answer(body)
    if REDUCE_TASK in text:
        return reduce_answer(body)
    return None


def responder(body: dict) -> str:
    """A FakeLLMServer responder that knows only the ask prompts."""
    reply = answer(body)
    if reply is None:
        raise AssertionError(f"unrecognised prompt: {_text(body)[:200]!r}")
    return reply
