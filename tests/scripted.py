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

import scripted_ask
import scripted_refine
import scripted_skeleton
import scripted_tables
import scripted_write

FAKE_KEY = scripted_write.FAKE_KEY
FABRICATED_QUOTE = "this sentence was never written by the authors of the paper"


def _text(body: dict) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []))


def _suggestions(key: str, leaf_ids: list[str]) -> list[dict]:
    """One outline suggestion for most papers, so refinement has local features to merge."""
    kind = zlib.crc32(key.encode()) % 3
    if kind == 0:
        return [
            {
                "rationale": f"{key} studies the cost of retrieval, which no section holds.",
                "op": "add",
                "targets": [],
                "parent": "",
                "title": "Efficiency of Retrieval",
                "description": "Extract latency and index-size results; compare trade-offs.",
            }
        ]
    if kind == 1:
        return [
            {
                "rationale": "The section title is narrower than what it holds.",
                "op": "rename",
                "targets": [leaf_ids[-1]],
                "parent": "",
                "title": "Benchmarks and Evaluation Protocols",
                "description": "Extract datasets, metrics and protocols; contrast results.",
            }
        ]
    return []


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
    suggest = 'Leave "suggestions" an empty list' not in text
    relevant = [
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
    # Like a real model, it also files the paper under a section about retrieval cost when the
    # outline has one (the edited-outline tests add such a section).
    for cost_leaf in re.findall(r"^- (n\d+): .*retrieval cost", text, flags=re.M):
        if cost_leaf != target:
            relevant.append(
                {
                    "node_id": cost_leaf,
                    "summary": f"The paper {key} reports what retrieval costs.",
                    "evidence": [{"sentence": int(index), "quote": quote}],
                    "confidence": 3,
                }
            )
    answer = {"relevant": relevant, "suggestions": _suggestions(key, leaf_ids) if suggest else []}
    return json.dumps(answer)


def digest_chunk_answer(body: dict) -> str:
    """Notes on one part of a long paper: its first sentence, on a leaf chosen by part."""
    text = _text(body)
    part = int(re.search(r"^Part (\d+) of the paper", text, flags=re.M).group(1))
    leaf_ids = re.findall(r"^- (n\d+): ", text, flags=re.M)
    index, sentence = re.findall(r"^\[(\d+)\] (.+)$", text, flags=re.M)[0]
    return json.dumps(
        {
            "relevant": [
                {
                    "node_id": leaf_ids[part % len(leaf_ids)],
                    "extracted_information": f"Part {part} describes the method.",
                    "evidence": [{"sentence": int(index), "quote": sentence[:120]}],
                    "rationale": "stated outright",
                    "confidence": 5 if part == 1 else 3,
                }
            ],
            "suggestions": [],
        }
    )


def digest_collapse_answer(body: dict) -> str:
    """Merge notes: per node, the evidence of the most confident notes, up to 4 quotes."""
    text = _text(body)
    notes = [json.loads(m) for m in re.findall(r"^<<<notes \d+\n(.*?)\n>>>$", text, re.M | re.S)]
    assert notes, "collapse prompt shows no notes"
    merged: dict[str, dict] = {}
    for note in notes:
        for item in note["relevant"]:
            slot = merged.setdefault(item["node_id"], {"evidence": [], "confidence": 0, "info": []})
            slot["evidence"] = (slot["evidence"] + item["evidence"])[:4]
            slot["confidence"] = max(slot["confidence"], item["confidence"])
            slot["info"].append(item.get("extracted_information") or item.get("summary", ""))
    final = "Task: write the paper's digest from these notes" in text
    relevant = []
    for node_id, slot in merged.items():
        entry = {"node_id": node_id, "evidence": slot["evidence"], "confidence": slot["confidence"]}
        if final:
            entry["summary"] = " ".join(slot["info"])[:300]
        else:
            entry.update(extracted_information=" ".join(slot["info"])[:300], rationale="merged")
        relevant.append(entry)
    return json.dumps({"relevant": relevant, "suggestions": []})


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
    for module in (
        scripted_skeleton,
        scripted_refine,
        scripted_ask,
        scripted_tables,
        scripted_write,
    ):
        answer = module.answer(body)
        if answer is not None:
            return answer
    text = _text(body)
    if "Task: propose 3 to 8 arXiv search queries" in text:
        return queries_answer(body)
    if "Task: rate how relevant each paper" in text:
        return screen_answer(body)
    if "this part of the paper informs" in text:
        return digest_chunk_answer(body)
    if "<<<notes 1" in text:
        return digest_collapse_answer(body)
    if "split into numbered sentences" in text:
        return digest_answer(body)
    raise AssertionError(f"unrecognised prompt: {text[:200]!r}")
