"""Map: attach the digests to the final outline, by node id.

Digests are made against the skeleton (or against an earlier outline the user then edited);
refinement keeps the ids of nodes it does not change, so most evidence simply stays on its
node. A paper is digested again only when its digest no longer fits the final outline:

- evidence sits on a node that vanished or became a parent (merged, removed, split); or
- the paper had no evidence at all and the final outline has leaves the old one lacked (a
  section added since may be exactly where it belongs); or
- a section was added since, and the paper is among the most similar to it
  (``papers_for_new_leaves``), so the new section gets the evidence it was added for.

Everything else is reused as it is, at no cost. With ``--outline`` the digests come from
what an earlier run in the same folder saved (``earlier_digests``), and headings the user
added get ids above every id that run used (``used_id_floor``), so a new heading never
inherits the evidence of a deleted section that had its id.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

from surveygen.errors import OutputError
from surveygen.models import Digest, Outline, Paper
from surveygen.outline_tree import IdAllocator
from surveygen.rundir import RunDir, fingerprint, state_name

# Papers digested again for each section added since their digest: the most similar ones,
# at least MIN_PER_NEW_LEAF and a quarter of the library, among those sharing a word with it
# (a section's few words give low cosines, so any shared word counts).
MIN_PER_NEW_LEAF = 3
SHARE_PER_NEW_LEAF = 0.25


def papers_for_new_leaves(
    outline: Outline, new_leaves: Collection[str], papers: Sequence[Paper]
) -> set[str]:
    """Keys of the papers most likely to hold evidence for sections the digests were not made
    against: for each new leaf, the papers whose title and abstract are most similar (TF-IDF
    cosine) to its title and description."""
    leaves = [leaf for leaf in outline.leaves() if leaf.id in new_leaves]
    if not leaves or not papers:
        return set()
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    texts = [f"{leaf.title} {leaf.description}" for leaf in leaves]
    texts += [f"{p.title} {p.abstract or p.text[:2000]}" for p in papers]
    try:
        matrix = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform(texts)
    except ValueError:  # nothing but stop words
        return set()
    similarity = cosine_similarity(matrix[: len(leaves)], matrix[len(leaves) :])
    per_leaf = max(MIN_PER_NEW_LEAF, round(SHARE_PER_NEW_LEAF * len(papers)))
    chosen: set[str] = set()
    for row in similarity:
        ranked = sorted(range(len(papers)), key=lambda i: (-row[i], papers[i].key))
        chosen.update(papers[i].key for i in ranked[:per_leaf] if row[i] > 0)
    return chosen


def paper_fingerprint(paper: Paper) -> str:
    """What a digest is made from: the paper's key and the text the model reads (its ranking
    scores and provenance, which change as the library grows, do not count)."""
    return fingerprint([paper.key, paper.title, paper.year, paper.text or paper.abstract])


def needs_redigest(digest: Digest, made_for: Collection[str], final: Outline) -> bool:
    """True when ``digest``, made against an outline with leaves ``made_for``, must be made
    again for ``final`` (see the module docstring)."""
    leaves = {leaf.id for leaf in final.leaves()}
    if not digest.node_ids() <= leaves:
        return True
    return not digest.nodes and bool(leaves - set(made_for))


def earlier_digests(
    rd: RunDir, papers: Sequence[Paper]
) -> tuple[dict[str, Digest], dict[str, list[str]]]:
    """With --outline: the digests an earlier run in this folder made for the same paper
    data (against its final outline first, else its skeleton), with the leaves of the
    outline each was made against."""
    digests: dict[str, Digest] = {}
    made_for: dict[str, list[str]] = {}
    for paper in papers:
        paper_fp = paper_fingerprint(paper)
        for folder in ("mapped", "digests"):
            try:
                saved = rd.read_json(f"state/{folder}/{state_name(paper.key)}.json")
            except OutputError:
                saved = None  # a damaged file: digest that paper again
            if (
                isinstance(saved, dict)
                and saved.get("paper") == paper_fp
                and isinstance(saved.get("leaves"), list)
            ):
                try:
                    digests[paper.key] = Digest.from_json(saved["item"])
                except (KeyError, TypeError, AttributeError):
                    continue  # damaged: try the next folder, or digest the paper again
                made_for[paper.key] = saved["leaves"]
                break
    return digests, made_for


def used_id_floor(rd: RunDir) -> int:
    """The next node id number no outline or digest saved in ``rd`` has used."""
    allocator = IdAllocator()
    for rel in ("state/outline.json", "state/refine/result.json"):
        try:
            saved = rd.read_json(rel)
        except OutputError:
            continue
        if isinstance(saved, dict) and isinstance(saved.get("outline"), dict):
            try:
                outline = Outline.from_json(saved["outline"])
            except (KeyError, TypeError, AttributeError):
                continue
            allocator.observe(node.id for node, _ in outline.walk())
    for folder in ("digests", "mapped"):
        directory = rd.resolve(f"state/{folder}")
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else ():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
                allocator.observe(str(i) for i in saved.get("leaves") or ())
                allocator.observe(n["node_id"] for n in saved["item"].get("nodes") or ())
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
    return allocator.floor
