"""Scripted answers for the writing prompts (prompts/write*.j2), read from the prompt's content.

Like a real model, the scripted writer mostly says what the evidence says, and sometimes not:
each leaf section carries one invented result (a number no paper reports), which the
citation check must catch and send for a rewrite, and one unknown key, which the guard must
remove. Answers depend only on the prompt, so a rerun gets the same answers.
"""

from __future__ import annotations

import json
import re

FAKE_KEY = "invented2099paper"
INVENTED_CLAIM = "improves exact-match accuracy by 37% over every baseline"

_EVIDENCE = re.compile(
    r"<<<evidence\n\[@([^\]\s]+)\][^\n]*\nSummary: ([^\n]*)\nQuotes:\n(.*?)\n>>>", re.S
)
_PASSAGE = re.compile(r'^- "?(.*?)"?$', re.M)


def _text(body: dict) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []))


def _evidence(text: str) -> list[tuple[str, str, list[str]]]:
    """(key, summary, quotes) of each evidence block, in prompt order."""
    return [
        (key, summary, _PASSAGE.findall(quotes)) for key, summary, quotes in _EVIDENCE.findall(text)
    ]


def _said(quote: str) -> str:
    return quote.strip().rstrip(".").strip()


def leaf(text: str) -> str:
    items = _evidence(text)
    assert items, "write prompt shows no evidence"
    first = items[0][0]
    claims = [f"One study reports that {_said(q[0])} [@{k}]." for k, _, q in items[:5] if q]
    return (
        " ".join(claims)
        + "\n\n"
        + f"Taken together, the method {INVENTED_CLAIM} [@{first}]. Other results are disputed "
        f"[@{FAKE_KEY}].\n\nA remaining limitation is that {_said(items[-1][2][0]).lower()} "
        f"[@{items[-1][0]}]."
    )


def parent(text: str) -> str:
    keys = list(dict.fromkeys(re.findall(r"\[@([^\]\s;]+)\]", text)))
    assert keys, "parent prompt shows no cited subsection"
    return (
        "The subsections below approach one problem from different sides and trade accuracy "
        f"against cost in different ways [@{keys[0]}]."
    )


def introduction(text: str) -> str:
    keys = re.findall(r"^<<<paper\n\[@([^\]\s]+)\]", text, flags=re.M)
    titles = re.findall(r"^<<<paper\n\[@[^\]\s]+\] ([^\n(]+)", text, flags=re.M)
    assert keys, "introduction prompt shows no paper"
    return (
        f"This survey reviews work such as {titles[0].strip()} [@{keys[0]}].\n\n"
        "The rest of the survey is organised by the sections of its outline."
    )


def conclusion(text: str) -> str:
    keys = list(dict.fromkeys(re.findall(r"\[@([^\]\s;]+)\]", text)))
    cite = f" [@{keys[0]}]" if keys else ""
    return f"Open problems remain in evaluation and in the cost of retrieval at scale{cite}."


def abstract(text: str) -> str:
    return "This survey organises the literature into the sections below and names open problems."


def fix(text: str) -> str:
    out = []
    parts = re.split(r"\nSentence (\d+):\n", text)
    for number, block in zip(parts[1::2], parts[2::2], strict=True):
        evidence = re.findall(r"<<<evidence\n\[@([^\]\s]+)\][^\n]*\n(.*?)\n>>>", block, re.S)
        rewritten = [
            f"The paper states that {_said(_PASSAGE.findall(passages)[0])} [@{key}]."
            for key, passages in evidence[:1]
            if _PASSAGE.findall(passages)
        ]
        out.append(
            {
                "id": int(number),
                "rationale": "Keep what the quote says.",
                "text": " ".join(rewritten),
            }
        )
    return json.dumps({"sentences": out})


def cover(text: str) -> str:
    additions = [
        {
            "key": key,
            "paragraph": 1,
            "sentence": f"It also reports that {_said(quotes[0])} [@{key}].",
        }
        for key, _, quotes in _evidence(text)
        if quotes
    ]
    return json.dumps({"additions": additions})


def verify(text: str) -> str:
    claim = re.search(r"<<<claim\n(.*?)\n>>>", text, re.S).group(1)
    paper = re.search(r"<<<paper \S+\n(.*?)\n>>>", text, re.S).group(1).lower()
    words = [w for w in re.findall(r"[a-z]{4,}", claim.lower())]
    found = sum(w in paper for w in words)
    verdict = "supported" if words and found / len(words) >= 0.5 else "unsupported"
    return json.dumps({"rationale": f"{found} of {len(words)} words found.", "verdict": verdict})


def headings(text: str) -> str:
    block = re.search(r"<<<headings\n(.*?)\n>>>", text, re.S).group(1)
    items = [line.split(": ", 1) for line in block.splitlines() if ": " in line]
    return json.dumps({"headings": [{"id": i, "text": f"DE {t}"} for i, t in items]})


_ROUTES = (
    ("Task: write the body of this section", leaf),
    ("Task: write the opening of this part", parent),
    ("Task: write the Introduction", introduction),
    ("Task: write the Conclusion", conclusion),
    ("Task: write the abstract", abstract),
    ("These sentences cite papers whose evidence", fix),
    ("Papers that belong in this section but are not cited yet", cover),
    ("does the paper's text support the claim", verify),
    ("Task: translate each heading", headings),
)


def answer(body: dict) -> str | None:
    text = _text(body)
    for marker, respond in _ROUTES:
        if marker in text:
            return respond(text)
    return None
