"""One library out of many sources: find candidates that are the same paper, merge them, and
give every paper its citation key.

Two candidates are the same paper when they share an arXiv id (versions ignored), a DOI, or a
title fingerprint — unless both carry arXiv ids and the ids differ (two preprints may share a
generic title). A DOI of the form ``10.48550/arXiv.<id>`` is arXiv's own and counts as that
arXiv id. Within a group, the user's data wins: for every field the first non-empty value
is taken, the user's candidates (in input order) before search results.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from surveygen.library.keys import is_valid_key, make_key
from surveygen.library.records import (
    USER,
    Candidate,
    normalise_arxiv_id,
    title_fingerprint,
)

__all__ = ["Merged", "assign_keys", "identities", "merge_candidates", "previous_keys"]

_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$")
# Fields merged by "first non-empty value wins", in priority order of the candidates.
_FIELDS = (
    "title",
    "authors",
    "year",
    "abstract",
    "text",
    "doi",
    "url",
    "venue",
    "pdf_url",
    "pdf_path",
)


@dataclass
class Merged:
    """A paper after merging: its data, every candidate it came from, and its final key."""

    paper: Candidate
    members: list[Candidate] = field(default_factory=list)
    key: str = ""

    @property
    def is_user(self) -> bool:
        return any(m.origin == USER for m in self.members)

    @property
    def sources(self) -> list[str]:
        """Distinct sources in priority order; the first is the paper's main source."""
        seen: list[str] = []
        for member in self.members:
            if member.source and member.source not in seen:
                seen.append(member.source)
        return seen


def _arxiv_of(candidate: Candidate) -> str | None:
    if candidate.arxiv_id:
        return candidate.arxiv_id
    match = _ARXIV_DOI.match(candidate.doi or "")
    if match:
        parsed = normalise_arxiv_id(match.group(1))
        return parsed[0] if parsed else None
    return None


def identities(candidate: Candidate) -> list[str]:
    """The identifiers a candidate can be recognised by: ``arxiv:``, ``doi:``, ``title:``."""
    out: list[str] = []
    arxiv_id = _arxiv_of(candidate)
    if arxiv_id:
        out.append(f"arxiv:{arxiv_id.lower()}")
    if candidate.doi and not _ARXIV_DOI.match(candidate.doi):
        out.append(f"doi:{candidate.doi}")
    fingerprint = title_fingerprint(candidate.title)
    if len(fingerprint) >= 8:  # very short titles ("Notes") identify nothing
        out.append(f"title:{fingerprint}")
    return out


class _Groups:
    """Union-find over candidate indices that remembers each group's arXiv ids."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))
        self.arxiv: list[set[str]] = [set() for _ in range(size)]

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int, *, by_title: bool) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if by_title and self.arxiv[ra] and self.arxiv[rb] and not (self.arxiv[ra] & self.arxiv[rb]):
            return  # same title, different preprints
        low, high = min(ra, rb), max(ra, rb)
        self.parent[high] = low
        self.arxiv[low] |= self.arxiv[high]


def merge_candidates(candidates: Sequence[Candidate]) -> tuple[list[Merged], int]:
    """Group candidates that are the same paper and merge each group.

    Returns the merged papers (user papers first, each group at the position of its first
    member) and the number of duplicates folded away (``len(candidates) - len(merged)``).
    """
    order = sorted(range(len(candidates)), key=lambda i: candidates[i].origin != USER)
    ordered = [candidates[i] for i in order]
    groups = _Groups(len(ordered))
    for i, candidate in enumerate(ordered):
        arxiv_id = _arxiv_of(candidate)
        if arxiv_id:
            groups.arxiv[i].add(arxiv_id.lower())
    # Strong identifiers first, so that titles only join groups the ids leave apart.
    for prefix in ("arxiv:", "doi:", "title:"):
        first: dict[str, int] = {}
        for i, candidate in enumerate(ordered):
            for ident in identities(candidate):
                if ident.startswith(prefix):
                    if ident in first:
                        groups.union(first[ident], i, by_title=prefix == "title:")
                    else:
                        first[ident] = i
    members: dict[int, list[Candidate]] = {}
    for i, candidate in enumerate(ordered):
        members.setdefault(groups.find(i), []).append(candidate)
    merged = [_merge(group) for _, group in sorted(members.items())]
    return merged, len(candidates) - len(merged)


def _merge(group: list[Candidate]) -> Merged:
    head = group[0]
    values = {}
    for name in _FIELDS:
        values[name] = next((v for m in group if (v := getattr(m, name))), getattr(head, name))
    arxiv_member = next((m for m in group if _arxiv_of(m)), None)
    if arxiv_member is not None:
        values["arxiv_id"] = _arxiv_of(arxiv_member)
        values["arxiv_version"] = arxiv_member.arxiv_version or next(
            (m.arxiv_version for m in group if m.arxiv_version), None
        )
    values["key"] = next((m.key for m in group if m.key), None)
    values["query"] = next((m.query for m in group if m.query), None)
    values["origin"] = USER if any(m.origin == USER for m in group) else head.origin
    return Merged(paper=replace(head, **values), members=list(group))


@dataclass(frozen=True)
class PreviousKey:
    """A key an earlier run gave a paper, and that paper's arXiv id (to tell preprints with
    the same title apart, as merging does)."""

    key: str
    arxiv: str | None


def previous_keys(papers: Iterable[Mapping[str, object]]) -> dict[str, PreviousKey]:
    """identity -> key from an earlier run's papers.jsonl lines (unreadable lines ignored)."""
    out: dict[str, PreviousKey] = {}
    for line in papers:
        key, title = line.get("key"), line.get("title")
        if not isinstance(key, str) or not isinstance(title, str) or not is_valid_key(key):
            continue
        raw_arxiv, doi = line.get("arxiv_id"), line.get("doi")
        arxiv = normalise_arxiv_id(raw_arxiv) if isinstance(raw_arxiv, str) else None
        probe = Candidate(
            title=title,
            arxiv_id=arxiv[0] if arxiv else None,
            doi=doi if isinstance(doi, str) else None,
        )
        record = PreviousKey(key, _arxiv_of(probe))
        for ident in identities(probe):
            out.setdefault(ident, record)
    return out


def _earlier_key(paper: Candidate, previous: Mapping[str, PreviousKey]) -> str | None:
    arxiv = _arxiv_of(paper)
    for ident in identities(paper):
        record = previous.get(ident)
        if record is None:
            continue
        if (
            ident.startswith("title:")
            and arxiv
            and record.arxiv
            and arxiv.lower() != record.arxiv.lower()
        ):
            continue  # same title, another preprint
        return record.key
    return None


def assign_keys(
    merged: Sequence[Merged], previous: Mapping[str, PreviousKey] | None = None
) -> list[str]:
    """Give every merged paper a unique key (case-insensitively, as BibTeX compares them).

    In order: a valid key the user gave; the key the same paper had in ``previous`` (see
    :func:`previous_keys`); a new key from :func:`make_key`. New keys are made in the order
    of their base key and then the paper's identifiers, so input order does not change them.
    Returns one warning per user key that could not be kept.
    """
    previous = previous or {}
    taken: set[str] = set()
    warnings: list[str] = []
    pending: list[Merged] = []
    for item in merged:
        given = item.paper.key
        if given and is_valid_key(given) and given.lower() not in taken:
            item.key = given
            taken.add(given.lower())
            continue
        if given:
            problem = "is already used" if is_valid_key(given) else "is not a valid citation key"
            where = next((m.where for m in item.members if m.key == given), item.paper.where)
            warnings.append(f"{where}: key {given!r} {problem}; a new key is made")
        pending.append(item)
    rest: list[Merged] = []
    for item in pending:
        old = _earlier_key(item.paper, previous)
        if old and old.lower() not in taken:
            item.key = old
            taken.add(old.lower())
        else:
            rest.append(item)
    rest.sort(
        key=lambda m: (
            make_key(m.paper.authors, m.paper.year, m.paper.title, set()),
            identities(m.paper),
        )
    )
    for item in rest:
        item.key = make_key(item.paper.authors, item.paper.year, item.paper.title, taken)
        taken.add(item.key.lower())
    return warnings
