"""Checking that each cited sentence is supported by the papers it cites.

Every (sentence, key) pair of a text is judged: by word overlap with the paper's evidence
(``support.SupportChecker``), and with ``--verify llm`` by an LLM entailment call per pair
(cached like every call). The sentences found unsupported get one rewrite, in a single call
per text that shows each sentence with its papers' evidence; whatever is still unsupported
afterwards loses the citation, and every step is counted. Sentences added to cite a
paper that no section cited yet (``add_sentences``) get no rewrite: an unsupported one is
left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from surveygen.aio import FATAL
from surveygen.citations import find_citations, guard_citations
from surveygen.errors import LLMError
from surveygen.llm.client import LLMClient
from surveygen.llm.prompts import render_prompt
from surveygen.models import Paper
from surveygen.stages.write_prompts import (
    FixAnswer,
    FixItem,
    VerdictAnswer,
    fix_context,
    verify_context,
)
from surveygen.support import (
    Passage,
    SupportChecker,
    claims,
    drop_keys,
    plain_text,
    replace_span,
)

STAGE = "write"
# Passages of a paper shown to the model when it rewrites or checks a sentence.
MAX_PASSAGES = 8


@dataclass
class CheckCounts:
    """What checking did to one text; summed over the survey for the report."""

    checked: int = 0  # (sentence, key) pairs judged as first written
    unsupported: int = 0  # of those, judged unsupported
    rewritten: int = 0  # sentences rewritten once
    removed_sentences: int = 0  # rewrites that found nothing to keep
    dropped: int = 0  # citations dropped because still unsupported
    rewrite_failures: int = 0  # rewrite calls that failed (their citations dropped instead)
    not_allowed: int = 0  # library keys a part may not cite (a synthesis citing beyond its
    # subsections), removed before checking
    llm_checks: int = 0  # entailment calls (--verify llm)
    llm_check_failures: int = 0  # entailment calls that failed (lexical verdict used)
    added: int = 0  # sentences added to cite uncovered papers (not in the counts above)
    not_added: int = 0  # proposed additions left out as unsupported

    @property
    def degraded(self) -> bool:
        """A call failed while this text was checked: the result is not the one a working
        endpoint gives, so it must not be reused by --resume."""
        return bool(self.rewrite_failures or self.llm_check_failures)

    def add(self, other: Mapping[str, int] | CheckCounts) -> None:
        """Add ``other``'s counts (names this class does not know are ignored)."""
        values = other.to_json() if isinstance(other, CheckCounts) else other
        names = {f.name for f in fields(self)}
        for name, value in values.items():
            if name in names:
                setattr(self, name, getattr(self, name) + int(value))

    @classmethod
    def from_json(cls, data: Mapping[str, int]) -> CheckCounts:
        counts = cls()
        counts.add(data)
        return counts

    def to_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class ClaimVerifier:
    """Judges claims for one survey; verdicts are remembered for the run."""

    llm: LLMClient
    checker: SupportChecker
    papers: Mapping[str, Paper]
    passages: Mapping[str, Sequence[Passage]]
    mode: str = "lexical"  # or "llm"
    language: str = "English"
    budget_tokens: int = 8000
    _verdicts: dict[tuple[str, str], bool] = field(default_factory=dict, repr=False)
    _checks: int = field(default=0, repr=False)  # LLM check calls numbered so far

    def _evidence(self, key: str, sentence: str) -> list[str]:
        """The key's passages, the ones closest to the sentence first."""
        items = list(self.passages.get(key, ()))
        best = self.checker.check(sentence, key).passage
        if best is not None and best in items:
            items.remove(best)
            items.insert(0, best)
        return [p.text for p in items[:MAX_PASSAGES]]

    async def supported(
        self,
        sentence: str,
        key: str,
        counts: CheckCounts,
        item: str,
        task: str | None = None,
        needs: Sequence[str] = (),
    ) -> bool:
        """Whether ``key``'s evidence supports ``sentence``; an LLM check call (in ``llm``
        mode) is traced as ``<task>/check/<n>``, needing ``needs``."""
        memo = (sentence, key)
        if memo in self._verdicts:
            return self._verdicts[memo]
        verdict = self.checker.check(sentence, key).supported
        if self.mode == "llm" and self.passages.get(key):
            prompt = render_prompt(
                "write_verify",
                **verify_context(
                    claim=sentence,
                    key=key,
                    title=self.papers[key].title,
                    passages=self._evidence(key, sentence),
                    budget_tokens=self.budget_tokens,
                ),
            )
            counts.llm_checks += 1
            try:
                self._checks += 1
                answer = await self.llm.structured(
                    prompt,
                    VerdictAnswer,
                    stage=STAGE,
                    item=f"{item}:{key}",
                    task=f"{task or f'{STAGE}/{item}'}/check/{self._checks}",
                    needs=needs,
                )
                verdict = answer.verdict == "supported"
            except FATAL:
                raise
            except LLMError:
                counts.llm_check_failures += 1  # keep the word-overlap verdict
        self._verdicts[memo] = verdict
        return verdict

    async def _unsupported(
        self, text: str, counts: CheckCounts, item: str, task: str, needs: Sequence[str]
    ) -> list[tuple[int, tuple[str, ...]]]:
        """(claim index, unsupported keys) for every claim of ``text`` with any."""
        found = []
        for index, claim in enumerate(claims(text)):
            bad = tuple(
                [
                    k
                    for k in claim.keys
                    if not await self.supported(claim.plain, k, counts, item, task, needs)
                ]
            )
            if bad:
                found.append((index, bad))
        return found

    async def verify(
        self, text: str, *, item: str, task: str | None = None, rewrite: bool = True
    ) -> tuple[str, CheckCounts]:
        """``text`` with unsupported citations rewritten once, then dropped. ``text`` is the
        answer of the call traced as ``<task>/draft``; the checks and the rewrite are traced
        under ``task`` (default ``write/<item>``)."""
        task = task or f"{STAGE}/{item}"
        draft = f"{task}/draft"
        counts = CheckCounts()
        spans = claims(text)
        counts.checked = sum(len(c.keys) for c in spans)
        bad = await self._unsupported(text, counts, item, task, (draft,))
        counts.unsupported = sum(len(keys) for _, keys in bad)
        if bad and rewrite:
            text = await self._rewrite(text, [i for i, _ in bad], counts, item, task)
        # Whatever is still unsupported loses its citation (last first, so spans stay valid).
        current = claims(text)
        again = await self._unsupported(text, counts, item, task, (draft, f"{task}/fix"))
        for index, keys in reversed(again):
            text = drop_keys(text, current[index].sentence, keys)
            counts.dropped += len(keys)
        return tidy_text(text), counts

    async def _rewrite(
        self, text: str, indexes: Sequence[int], counts: CheckCounts, item: str, task: str
    ) -> str:
        spans = claims(text)
        items = [
            FixItem(
                id=n,
                sentence=spans[i].sentence.text,
                papers=tuple(
                    (k, self.papers[k].title, tuple(self._evidence(k, spans[i].plain)))
                    for k in spans[i].keys
                ),
            )
            for n, i in enumerate(indexes, start=1)
        ]
        prompt = render_prompt(
            "write_fix",
            **fix_context(items, language=self.language, budget_tokens=self.budget_tokens),
        )
        try:
            answer = await self.llm.structured(
                prompt,
                FixAnswer,
                stage=STAGE,
                item=f"{item}:fix",
                task=f"{task}/fix",
                needs=(f"{task}/draft", f"{task}/check"),
            )
        except FATAL:
            raise
        except LLMError:
            counts.rewrite_failures += 1  # no rewrite: the unsupported citations are dropped
            return text
        by_id = {n: i for n, i in enumerate(indexes, start=1)}
        replacements: dict[int, str] = {}
        for draft in answer.sentences:
            index = by_id.get(draft.id)
            if index is None or index in replacements:
                continue
            # The rewrite may keep or drop the sentence's own keys, never bring in others.
            new = guard_citations(" ".join(draft.text.split()), spans[index].keys).text
            replacements[index] = new
        for index in sorted(replacements, reverse=True):
            text = replace_span(text, spans[index].sentence, replacements[index])
            counts.rewritten += 1
            counts.removed_sentences += not replacements[index]
        return text

    async def add_sentences(
        self,
        text: str,
        additions: Sequence[tuple[str, int, str]],
        *,
        item: str,
        task: str | None = None,
    ) -> tuple[str, CheckCounts]:
        """Insert ``(key, paragraph number, sentence)`` additions that the key's evidence
        supports; returns the text and the counts. The additions are the answer of the call
        traced as ``<task>/draft``."""
        task = task or f"{STAGE}/{item}"
        counts = CheckCounts()
        paragraphs = split_paragraphs(text)
        placed: set[str] = set()
        for key, number, sentence in additions:
            sentence = guard_citations(" ".join(sentence.split()), {key}).text
            if not sentence or key in placed:
                continue
            if key not in find_citations(sentence):
                sentence = _cite_at_end(sentence, key)
            if not await self.supported(
                plain_text(sentence), key, counts, item, task, (f"{task}/draft",)
            ):
                counts.not_added += 1
                continue
            target = min(max(number, 1), len(paragraphs)) - 1 if paragraphs else None
            if target is None:
                paragraphs.append(sentence)
            else:
                paragraphs[target] = paragraphs[target].rstrip() + " " + sentence
            placed.add(key)
            counts.added += 1
        return "\n\n".join(paragraphs), counts


def _cite_at_end(sentence: str, key: str) -> str:
    match = re.search(r"([.!?])\s*$", sentence)
    if match:
        return sentence[: match.start()].rstrip() + f" [@{key}]" + match.group(1)
    return sentence.rstrip() + f" [@{key}]."


def split_paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n[ \t]*\n", text.strip()) if p.strip()]


def tidy_text(text: str) -> str:
    """Collapse the gaps removed sentences leave: double spaces inside lines, space before
    punctuation, empty paragraphs."""
    lines = []
    for line in text.split("\n"):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        body = re.sub(r"[ \t]{2,}", " ", line.strip())
        body = re.sub(r" +([,.;:!?])(?=\s|$)", r"\1", body)
        lines.append(indent + body if body else "")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


__all__ = ["CheckCounts", "ClaimVerifier", "split_paragraphs", "tidy_text"]
