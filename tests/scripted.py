"""A scripted "model" for end-to-end tests: answers each surveygen prompt from its content.

It reads what the real prompts send (the paper list, the numbered sentences, the evidence) and
answers in the shape each stage asks for, so the pipeline runs for real over HTTP. It also
misbehaves on purpose in ways the pipeline must absorb: each digest carries one fabricated
quote (which verification must drop) and each section cites one unknown key (which the
citation guard must remove).
"""

from __future__ import annotations

import json
import re
import zlib

FAKE_KEY = "invented2099paper"
FABRICATED_QUOTE = "this sentence was never written by the authors of the paper"


def _text(body: dict) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []))


def skeleton_answer(body: dict) -> str:
    keys = re.findall(r"\[@([^\]\s]+)\]", _text(body))
    assert keys, "skeleton prompt lists no papers"
    outline = {
        "title": "A Survey of Retrieval-Augmented Language Models",
        "sections": [
            {
                "title": "Retrieval Components",
                "description": "How systems find passages: compare sparse and dense retrievers.",
                "subsections": [
                    {"title": "Dense Retrievers", "description": "Extract retriever designs."},
                    {"title": "Retrieval Training", "description": "Extract training signals."},
                ],
            },
            {
                "title": "Using Retrieved Evidence",
                "description": "How generators consume passages.",
                "subsections": [
                    {"title": "Fusion in the Decoder", "description": "Extract fusion methods."},
                    {"title": "Self-Reflection", "description": "Extract critique mechanisms."},
                ],
            },
            {
                "title": "Evaluation",
                "description": "Benchmarks and metrics; contrast reported results.",
                "subsections": [],
            },
        ],
    }
    return json.dumps(outline)


def digest_answer(body: dict) -> str:
    text = _text(body)
    key = re.search(r"<<<paper (\S+)", text).group(1)
    leaf_ids = re.findall(r"^- (n\d+): ", text, flags=re.M)
    sentences = re.findall(r"^\[(\d+)\] (.+)$", text, flags=re.M)
    assert leaf_ids and sentences, "digest prompt lacks sections or sentences"
    # Spread papers over leaves deterministically by key.
    target = leaf_ids[zlib.crc32(key.encode()) % len(leaf_ids)]
    index, sentence = sentences[0]
    quote = " ".join(sentence.split()[:12])
    answer = {
        "relevant": [
            {
                "node_id": target,
                "summary": f"The paper {key} contributes a method relevant here.",
                "evidence": [
                    {"sentence": int(index), "quote": quote},
                    {"sentence": 0, "quote": FABRICATED_QUOTE},
                ],
                "confidence": 4,
            }
        ]
    }
    return json.dumps(answer)


def write_answer(body: dict) -> str:
    text = _text(body)
    title = re.search(r"Section to write: (.+)", text).group(1).strip()
    keys = list(dict.fromkeys(re.findall(r"<<<evidence\n\[@([^\]\s]+)\]", text)))
    first = keys[0]
    cites = "; ".join(f"@{k}" for k in keys)
    return (
        f"Work on {title.lower()} builds on several complementary ideas [{cites}]. "
        f"One line of work introduces a dedicated method [@{first}], while another claims "
        f"results that no paper in the library reports [@{FAKE_KEY}].\n\n"
        f"A remaining limitation is the cost of retrieval at scale [@{first}]."
    )


SCRIPTED_QUERIES = [
    "dense passage retrieval",
    "retrieval augmented generation evaluation",
    "fusion in decoder",
]


def queries_answer(body: dict) -> str:
    return json.dumps({"queries": SCRIPTED_QUERIES})


def screen_answer(body: dict) -> str:
    """Rate a paper 9 when its title mentions retrieval, else 1 (so off-topic ones drop)."""
    text = _text(body)
    ratings = []
    for pid, title in re.findall(r"^<<<paper (p\d+)\ntitle: (.*)$", text, flags=re.M):
        on_topic = "retriev" in title.lower()
        reason = "about retrieval" if on_topic else "another subject"
        ratings.append({"id": pid, "reason": reason, "score": 9 if on_topic else 1})
    assert ratings, "screen prompt lists no papers"
    return json.dumps({"ratings": ratings})


def pipeline_responder(body: dict) -> str:
    """Route a request to the answer for its stage, recognised by the prompt's task line."""
    text = _text(body)
    if "Task: propose 3 to 8 arXiv search queries" in text:
        return queries_answer(body)
    if "Task: rate how relevant each paper" in text:
        return screen_answer(body)
    if "Task: propose the outline of a survey" in text:
        return skeleton_answer(body)
    if "split into numbered sentences" in text:
        return digest_answer(body)
    if "Section to write:" in text:
        return write_answer(body)
    raise AssertionError(f"unrecognised prompt: {text[:200]!r}")
