"""A scripted "model" for the refine prompts: answers each from what the prompt really shows.

* merge: the distinct edits listed in its input (at most four), as one merged suggestion;
* apply: the outline parsed from the prompt with every edit applied (rename, add, remove,
  merge, move), ids kept for the nodes it keeps and ``""`` for new ones;
* judge: rubric scores computed from the outline it is shown, by default a deterministic hash
  of its titles (so some candidates win and some lose); :func:`make_answer` takes another.

``answer(body)`` returns None for a prompt that is not one of the three.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from typing import Any

MERGE_TASK = "Task: merge the outline suggestions below into one short, coherent set of edits."
APPLY_TASK = "Task: apply the edits below to the outline and return the whole revised outline."
JUDGE_TASK = "Task: rate the outline below as a plan for a survey of the listed papers."

# A judge: the outline's nodes as (id, depth, title) in reading order -> the four 0-10 scores.
Judge = Callable[[list[tuple[str, int, str]]], tuple[float, float, float, float]]


def _text(body: dict) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []))


def _fenced(text: str, label: str) -> str:
    match = re.search(rf"<<<{re.escape(label)}\n(.*?)\n>>>", text, flags=re.S)
    assert match, f"no <<<{label} block in the prompt"
    return match.group(1)


def _edit_lines(block: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in block.splitlines() if line.startswith('{"op":')]


# --------------------------------------------------------------------------- merge


def merge_answer(body: dict) -> str:
    edits: list[dict[str, Any]] = []
    seen: set[str] = set()
    for edit in _edit_lines(_text(body)):
        key = json.dumps([edit["op"], edit["targets"], edit["title"]])
        if key not in seen and len(edits) < 4:
            seen.add(key)
            edits.append(edit)
    summary = "; ".join(f"{e['op']} {e['title'] or ','.join(e['targets'])}" for e in edits)
    return json.dumps(
        {"rationale": "These edits recur across the inputs.", "summary": summary, "edits": edits}
    )


# --------------------------------------------------------------------------- apply


def _find(nodes: list[dict], node_id: str) -> tuple[list[dict], int] | None:
    for i, node in enumerate(nodes):
        if node["id"] == node_id:
            return nodes, i
        found = _find(node["children"], node_id)
        if found:
            return found
    return None


def _detach(sections: list[dict], node_id: str) -> dict | None:
    found = _find(sections, node_id)
    if not found:
        return None
    siblings, i = found
    return siblings.pop(i)


def _children_of(sections: list[dict], parent: str | None) -> list[dict]:
    if parent:
        found = _find(sections, parent)
        if found:
            siblings, i = found
            return siblings[i]["children"]
    return sections


def apply_edit(outline: dict, edit: dict) -> None:
    """Apply one edit to an outline in the prompt's JSON shape, in place."""
    sections = outline["sections"]
    op, targets = edit["op"], edit["targets"]
    if op == "add":
        node = {"id": "", "title": edit["title"], "description": edit["description"]}
        _children_of(sections, edit["parent"]).append({**node, "children": []})
    elif op == "rename" and _find(sections, targets[0]):
        siblings, i = _find(sections, targets[0])
        siblings[i]["title"] = edit["title"]
        siblings[i]["description"] = edit["description"] or siblings[i]["description"]
    elif op == "remove" and sum(1 for _ in _walk(sections)) > 1:
        _detach(sections, targets[0])
    elif op == "merge" and _find(sections, targets[0]):
        siblings, i = _find(sections, targets[0])
        keep = siblings[i]
        for other in targets[1:]:
            gone = _detach(sections, other) if other != keep["id"] else None
            if gone:
                keep["children"].extend(gone["children"])
        keep["title"], keep["description"] = edit["title"], edit["description"]
    elif op == "move":
        node = _detach(sections, targets[0])
        if node:
            _children_of(sections, edit["parent"]).append(node)


def _walk(nodes: list[dict]):
    for node in nodes:
        yield node
        yield from _walk(node["children"])


def apply_answer(body: dict) -> str:
    text = _text(body)
    outline = json.loads(_fenced(text, "outline"))
    for node in _walk(outline["sections"]):
        node.setdefault("children", [])
    for edit in _edit_lines(_fenced(text, "edits")):
        apply_edit(outline, edit)
    return json.dumps(outline)


# --------------------------------------------------------------------------- judge


def outline_nodes(text: str) -> list[tuple[str, int, str]]:
    """(id, depth, title) of every node of the outline shown in a judge prompt."""
    block = _fenced(text, "outline")
    nodes = []
    for indent, node_id, title in re.findall(r"^( *)- \[([^\]]+)\] ([^:\n]+)", block, re.M):
        nodes.append((node_id, len(indent) // 2 + 1, title.strip()))
    return nodes


def hash_judge(nodes: list[tuple[str, int, str]]) -> tuple[float, float, float, float]:
    """Scores from a hash of the titles: arbitrary but repeatable, spread over 2-9."""
    h = zlib.crc32("|".join(title for _, _, title in nodes).encode())
    return tuple(float(2 + (h >> (8 * i)) % 8) for i in range(4))  # type: ignore[return-value]


def make_answer(judge: Judge = hash_judge) -> Callable[[dict], str | None]:
    """An ``answer`` function whose judge scores outlines with ``judge``."""

    def answer(body: dict) -> str | None:
        text = _text(body)
        if MERGE_TASK in text:
            return merge_answer(body)
        if APPLY_TASK in text:
            return apply_answer(body)
        if JUDGE_TASK in text:
            structure, coverage, redundancy, quality = judge(outline_nodes(text))
            return json.dumps(
                {
                    "rationale": f"Judged {len(outline_nodes(text))} sections.",
                    "structure": structure,
                    "coverage": coverage,
                    "redundancy": redundancy,
                    "description_quality": quality,
                }
            )
        return None

    return answer


answer = make_answer()
