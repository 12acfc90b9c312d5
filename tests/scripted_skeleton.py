"""Scripted answers to the skeleton prompts, for the fake LLM server.

``answer(body)`` recognises the two skeleton prompts by their ``Task:`` line: the outline
prompt (the whole library, or one group of it) and the merge prompt. A whole-library outline
and the merge both get the same retrieval-augmented generation outline; a group gets a small
fragment named after its group number and its first paper, so a test can tell which
fragment went where. Every id is "": our code assigns them.
"""

from __future__ import annotations

import json
import re

OUTLINE_TASK = "Task: propose the outline of a survey on the topic below"
MERGE_TASK = "Task: merge the outline fragments below"
GROUP = re.compile(r"papers are group (\d+) of (\d+)")


def _text(body: dict) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []))


def node(title: str, description: str, *children: dict) -> dict:
    return {"id": "", "title": title, "description": description, "children": list(children)}


MERGED = {
    "title": "A Survey of Retrieval-Augmented Language Models",
    "sections": [
        node(
            "Retrieval Components",
            "How systems find passages: compare sparse and dense retrievers.",
            node("Dense Retrievers", "Extract retriever designs."),
            node("Retrieval Training", "Extract training signals."),
        ),
        node(
            "Using Retrieved Evidence",
            "How generators consume passages.",
            node("Fusion in the Decoder", "Extract fusion methods."),
            node("Self-Reflection", "Extract critique mechanisms."),
        ),
        node("Evaluation", "Benchmarks and metrics; contrast reported results."),
    ],
}
"""The outline for a whole library and the merged outline: ids n1..n7 in reading order."""


def fragment(group: int, keys: list[str]) -> dict:
    """Group ``group``'s fragment: one section with two subsections, then one leaf section."""
    first = keys[0]
    return {
        "title": f"Part {group}",
        "sections": [
            node(
                f"Group {group} methods",
                f"Methods of the papers around {first}: compare them.",
                node(f"Group {group} retrievers", "Extract how passages are retrieved."),
                node(f"Group {group} generators", "Extract how passages are used."),
            ),
            node(f"Group {group} evaluation", "Contrast the reported results."),
        ],
    }


def answer(body: dict) -> str | None:
    """The scripted answer to a skeleton prompt, or None for any other prompt."""
    text = _text(body)
    if MERGE_TASK in text:
        assert "<<<fragment 1\n" in text, "merge prompt shows no fragment"
        return json.dumps(MERGED)
    if OUTLINE_TASK in text:
        keys = re.findall(r"\[@([^\]\s]+)\]", text)
        assert keys, "skeleton prompt lists no papers"
        group = GROUP.search(text)
        if group is None:
            return json.dumps(MERGED)
        return json.dumps(fragment(int(group.group(1)), keys))
    return None
