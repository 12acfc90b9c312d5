"""Write the whole survey: leaf sections, coverage, tables, parent syntheses, introduction,
conclusion, abstract; then remove repeated sentences and build the ``SurveyDoc``.

Order follows what each part is made from. Leaves are written from their evidence and
checked; papers with evidence that no leaf cites are then added to the leaf that holds their
strongest evidence (that needs every leaf); each parent is written from its children as soon
as they are final; the conclusion from the top-level sections; the abstract from the
introduction and the conclusion. The introduction (outline and central papers), the tables
(evidence) and translated headings (outline) need none of the sections, so they are made
while the leaves are written; if a leaf fails and is left out, the introduction and tables
are made again for the outline without it. Every cited sentence of every part goes through
the same check (stages/verify.py). Each part is saved under ``state/`` keyed on what its
prompt is made from, so ``--resume`` redoes only what changed.

Calls are traced (surveygen.llm.client.Trace) as ``section/<id>``, ``cover/<id>``,
``table/<id>``, ``intro``, ``conclusion``, ``abstract`` and ``headings``, each part's
first call as ``<part>/draft``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from surveygen.aio import FATAL, TaskScope, run_items
from surveygen.citations import find_citations, guard_citations
from surveygen.dedupe import find_all, remove_found
from surveygen.document import (
    CONCLUSION,
    INTRODUCTION,
    DocSection,
    Labels,
    SurveyDoc,
    Table,
)
from surveygen.errors import LLMError
from surveygen.lengths import LengthPlan, default_length, plan_lengths
from surveygen.llm.client import LLMClient
from surveygen.llm.prompts import Prompt, render_prompt
from surveygen.models import Digest, Outline, OutlineNode, Paper, Section
from surveygen.rundir import fingerprint, state_name
from surveygen.stages.tables import (
    TableResult,
    make_table,
    subtree_evidence,
    table_candidates,
    table_context,
)
from surveygen.stages.verify import CheckCounts, ClaimVerifier, split_paragraphs
from surveygen.stages.write import SectionEvidence, clean_section_text, parent_titles, prune
from surveygen.stages.write_prompts import (
    CoverAnswer,
    EvidenceItem,
    HeadingsAnswer,
    abstract_context,
    conclusion_context,
    cover_context,
    headings_context,
    intro_context,
    leaf_context,
    parent_context,
)
from surveygen.support import SupportChecker, evidence_passages

T = TypeVar("T")
_FIXED_HEADINGS = {
    INTRODUCTION: "Introduction",
    CONCLUSION: "Conclusion",
    "abstract": "Abstract",
    "references": "References",
    "paper": "Paper",
    "table": "Table",
}
STAGE = "write"
# What the evidence and the final outline are made from: every part's prompt reads them.
EVIDENCE = ("skeleton", "digest", "refine", "map")
INTRO_PAPERS = 20
ENGLISH = {"english", "en", "en-us", "en-gb", "british english", "american english"}

# memo(state path, version, load, make, reusable): the saved item when its version matches and
# reusable(item) holds, else made (and saved).
Memo = Callable[..., Any]


def verify_mode(language: str, verify: str) -> tuple[str, str | None]:
    """The check to run, and why it differs from ``verify`` when it does: word overlap cannot
    compare a sentence in another language with English evidence, so a survey not written in
    English is checked by the LLM."""
    if verify == "lexical" and language.strip().lower() not in ENGLISH:
        return "llm", (
            f"citations of a survey in {language} are checked by the LLM (--verify llm): word "
            "overlap cannot compare its sentences with the papers' English evidence"
        )
    return verify, None


def _reusable_section(section: Section) -> bool:
    return not CheckCounts.from_json(section.checks).degraded


@dataclass(frozen=True)
class WriteOptions:
    topic: str
    language: str = "English"
    length: int | None = None
    verify: str = "lexical"
    max_tables: int = 4
    budget_tokens: int = 28000  # the model's context minus its answer


@dataclass
class WriteOutcome:
    doc: SurveyDoc
    outline: Outline  # the outline actually written (leaves without a section left out)
    sections: dict[str, Section]
    lengths: LengthPlan
    counts: CheckCounts = field(default_factory=CheckCounts)
    failures: dict[str, str] = field(default_factory=dict)
    uncovered: list[str] = field(default_factory=list)  # papers with evidence, never cited
    covered_by_revision: list[str] = field(default_factory=list)
    duplicates: tuple[int, int] = (0, 0)  # (sentences, duplicates) before removal
    duplicates_removed: int = 0
    tables: list[dict[str, Any]] = field(default_factory=list)
    translated_headings: bool = False
    checker: SupportChecker | None = None  # the citation check, reused for hover quotes


@dataclass(frozen=True)
class _SavedTable:
    table: Table | None
    reason: str
    cells_blanked: int = 0
    rows_dropped: int = 0
    failed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table.to_json() if self.table else None,
            "reason": self.reason,
            "cells_blanked": self.cells_blanked,
            "rows_dropped": self.rows_dropped,
            "failed": self.failed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _SavedTable:
        table = data["table"]
        return cls(
            Table.from_json(table) if table is not None else None,
            str(data["reason"]),
            int(data.get("cells_blanked", 0)),
            int(data.get("rows_dropped", 0)),
            bool(data.get("failed", False)),
        )


@dataclass(frozen=True)
class _SavedHeadings:
    headings: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"headings": self.headings}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _SavedHeadings:
        headings = data["headings"]
        if not all(isinstance(v, str) for v in headings.values()):
            raise ValueError("headings must be strings")
        return cls(dict(headings))


def _version(prompt: Prompt, **extra: Any) -> str:
    return fingerprint({"prompt": list(prompt.messages), **extra})


def _item(evidence: SectionEvidence) -> EvidenceItem:
    return EvidenceItem(
        evidence.paper.key,
        evidence.paper.title,
        evidence.paper.year,
        evidence.digest.summary,
        tuple(q.quote for q in evidence.digest.evidence),
    )


def evidence_weight(items: Sequence[SectionEvidence]) -> float:
    """How much a leaf has to say: papers, weighted by confidence and quotes."""
    return sum(e.digest.confidence / 5 * (1 + 0.25 * len(e.digest.evidence)) for e in items)


def owners(evidence: Mapping[str, Sequence[SectionEvidence]], leaves: Sequence[str]) -> dict:
    """Each paper's home leaf: where its evidence is strongest (confidence, then quotes)."""
    best: dict[str, tuple[tuple[int, int, int], str]] = {}
    for rank, leaf in enumerate(leaves):
        for e in evidence.get(leaf, ()):
            score = (e.digest.confidence, len(e.digest.evidence), -rank)
            if e.paper.key not in best or score > best[e.paper.key][0]:
                best[e.paper.key] = (score, leaf)
    return {key: leaf for key, (_, leaf) in best.items()}


class Composer:
    """Writes one survey; the pipeline supplies the LLM, the state memo and the UI."""

    def __init__(
        self,
        llm: LLMClient,
        outline: Outline,
        evidence: Mapping[str, Sequence[SectionEvidence]],
        library: Mapping[str, Paper],
        digests: Mapping[str, Digest],
        options: WriteOptions,
        *,
        memo: Memo,
        ui: Any,
        warn: Callable[[str], None],
    ) -> None:
        self.llm = llm
        self.outline = outline
        self.evidence = evidence
        self.library = library
        self.options = options
        self.memo = memo
        self.ui = ui
        self.warn = warn
        passages = {
            key: evidence_passages(paper, digests.get(key)) for key, paper in library.items()
        }
        self.checker = SupportChecker(passages)
        self.verifier = ClaimVerifier(
            llm,
            self.checker,
            library,
            passages,
            mode=options.verify,
            language=options.language,
            budget_tokens=options.budget_tokens,
        )
        self.counts = CheckCounts()
        self.failures: dict[str, str] = {}
        cited_papers = {e.paper.key for items in evidence.values() for e in items}
        total = options.length or default_length(len(cited_papers))
        weights = {leaf.id: evidence_weight(evidence.get(leaf.id, ())) for leaf in outline.leaves()}
        self.lengths = plan_lengths(outline, weights, total)

    # ------------------------------------------------------------------ helpers

    async def _text(self, prompt: Prompt, item: str, task: str, needs: Sequence[str]) -> str:
        answer = await self.llm.text(
            prompt, stage=STAGE, item=item, task=f"{task}/draft", needs=needs
        )
        return clean_section_text(answer)

    async def _checked(
        self, node_id: str, raw: str, known: Sequence[str] | None = None, *, task: str
    ) -> Section:
        """Remove keys outside the library (counted as unknown) and, when ``known`` is given,
        library keys this part may not cite (counted apart); then check its citations (the
        checks traced under ``task``)."""
        guarded = guard_citations(raw, self.library.keys())
        text, allowed = guarded.text, 0
        if known is not None:
            before = len(find_citations(text))
            text = guard_citations(text, known).text
            allowed = before - len(find_citations(text))
        text, counts = await self.verifier.verify(text, item=node_id, task=task)
        counts.not_allowed = allowed
        return Section(node_id, text, guarded.removed, counts.to_json())

    async def _jobs(
        self, stage: str, jobs: Mapping[str, Callable[[], Awaitable[T]]]
    ) -> tuple[dict[str, T], dict[str, str]]:
        with self.ui.stage(stage, len(jobs)) as progress:
            return await run_items(jobs.items(), progress)

    def _title(self, node_id: str) -> str:
        node = self.outline.find(node_id)
        return node.title if node is not None else node_id

    # ------------------------------------------------------------------ parts

    def _leaf_job(self, node: OutlineNode, parent: str | None) -> Callable[[], Awaitable[Section]]:
        items = [_item(e) for e in self.evidence[node.id]]
        prompt = render_prompt(
            "write",
            **leaf_context(
                survey_title=self.outline.title,
                node=node,
                parent_title=parent,
                items=items,
                words=self.lengths.words(node.id),
                language=self.options.language,
                budget_tokens=self.options.budget_tokens,
            ),
        )

        async def make() -> Section:
            task = f"section/{node.id}"
            raw = await self._text(prompt, node.id, task, EVIDENCE)
            section = await self._checked(node.id, raw, task=task)
            if not section.text.strip():
                raise LLMError("nothing written for it was supported by its evidence")
            return section

        version = _version(prompt, verify=self.options.verify)
        path = f"state/sections/{state_name(node.id)}.json"
        return lambda: self.memo(path, version, Section.from_json, make, _reusable_section)

    async def leaves(self) -> dict[str, Section]:
        parents = parent_titles(self.outline)
        jobs = {
            leaf.id: self._leaf_job(leaf, parents.get(leaf.id)) for leaf in self.outline.leaves()
        }
        sections, failures = await self._jobs("write", jobs)
        for node_id, reason in sorted(failures.items()):
            self.warn(f"section {node_id} ({self._title(node_id)}) left out: {reason}")
        self.failures.update(failures)
        return sections

    def _cover_job(
        self, section: Section, keys: Sequence[str], leaves: Sequence[str]
    ) -> Callable[[], Awaitable[Section]]:
        by_key = {e.paper.key: e for e in self.evidence[section.node_id]}
        prompt = render_prompt(
            "write_cover",
            **cover_context(
                section_title=self._title(section.node_id),
                paragraphs=split_paragraphs(section.text),
                items=[_item(by_key[k]) for k in keys],
                language=self.options.language,
                budget_tokens=self.options.budget_tokens,
            ),
        )

        async def make() -> Section:
            task = f"cover/{section.node_id}"
            # Which papers no section cites depends on every leaf.
            needs = [f"section/{leaf}" for leaf in leaves]
            answer = await self.llm.structured(
                prompt,
                CoverAnswer,
                stage=STAGE,
                item=f"{section.node_id}:cover",
                task=f"{task}/draft",
                needs=needs,
            )
            additions = [
                (a.key, a.paragraph, a.sentence) for a in answer.additions if a.key in keys
            ]
            text, counts = await self.verifier.add_sentences(
                section.text, additions, item=section.node_id, task=task
            )
            merged = CheckCounts()
            merged.add(section.checks)
            merged.add(counts)
            return Section(section.node_id, text, section.removed_citations, merged.to_json())

        version = _version(prompt, verify=self.options.verify, text=section.text)
        path = f"state/coverage/{state_name(section.node_id)}.json"
        return lambda: self.memo(path, version, Section.from_json, make)

    async def cover(self, sections: dict[str, Section]) -> list[str]:
        """Revise once each section that owns a paper no section cites; returns the keys
        the revisions cited."""
        cited = {k for s in sections.values() for k in find_citations(s.text)}
        home = owners(self.evidence, [leaf for leaf in sections])
        missing: dict[str, list[str]] = {}
        for key, leaf in home.items():
            if key not in cited:
                missing.setdefault(leaf, []).append(key)
        if not missing:
            return []
        leaves = list(sections)
        jobs = {
            leaf: self._cover_job(sections[leaf], keys, leaves) for leaf, keys in missing.items()
        }
        revised, failures = await self._jobs("cite", jobs)
        for node_id, reason in sorted(failures.items()):
            self.warn(f"section {node_id} could not be revised to cite its papers: {reason}")
        sections.update(revised)
        now = {k for s in revised.values() for k in find_citations(s.text)}
        return sorted(k for keys in missing.values() for k in keys if k in now)

    async def tables(self, needs: Sequence[str] = EVIDENCE) -> dict[str, _SavedTable]:
        """Tables for the sections whose evidence compares papers (``needs``: what the
        outline and evidence they read come from)."""
        if self.options.max_tables <= 0:
            return {}
        ids = table_candidates(self.outline, self.evidence, self.options.max_tables)

        def job(node_id: str) -> Callable[[], Awaitable[_SavedTable]]:
            node = self.outline.find(node_id)
            assert node is not None
            items = subtree_evidence(node, self.evidence)

            async def make() -> _SavedTable:
                result: TableResult = await make_table(
                    self.llm,
                    survey_title=self.outline.title,
                    node=node,
                    evidence=items,
                    language=self.options.language,
                    supported=lambda cell, key: self.checker.check(cell, key).supported,
                    task=f"table/{node_id}",
                    needs=needs,
                )
                return _SavedTable(
                    result.table,
                    result.reason,
                    result.cells_blanked,
                    result.rows_dropped,
                    result.failed,
                )

            prompt = render_prompt(
                "write_table",
                **table_context(
                    survey_title=self.outline.title,
                    node=node,
                    evidence=items,
                    language=self.options.language,
                ),
            )
            path = f"state/tables/{state_name(node_id)}.json"
            return lambda: self.memo(
                path,
                _version(prompt, verify=self.options.verify),
                _SavedTable.from_json,
                make,
                lambda saved: not saved.failed,
            )

        made, failures = await self._jobs("tables", {i: job(i) for i in ids})
        for node_id, reason in sorted(failures.items()):
            self.warn(f"no table for {node_id} ({self._title(node_id)}): {reason}")
        return made

    async def parents(self, sections: dict[str, Section]) -> None:
        """Parent syntheses, each from its children's texts, started as soon as its child
        parents are written (``sections`` gains each one as it is made)."""
        internal = [node for node, _ in self.outline.walk() if not node.is_leaf]
        finished = {node.id: asyncio.Event() for node in internal}
        leaves = [leaf.id for leaf in self.outline.leaves()]

        def job(node: OutlineNode) -> Callable[[], Awaitable[Section]]:
            async def make() -> Section:
                try:
                    for child in node.children:
                        if child.id in finished:
                            await finished[child.id].wait()
                    section = await self._parent_job(node, sections, leaves)()
                    sections[node.id] = section
                    return section
                finally:
                    finished[node.id].set()

            return make

        _, failures = await self._jobs("synthesis", {node.id: job(node) for node in internal})
        for node_id, reason in sorted(failures.items()):
            self.warn(f"no opening for {node_id} ({self._title(node_id)}): {reason}")

    def _parent_job(
        self, node: OutlineNode, sections: Mapping[str, Section], leaves: Sequence[str]
    ) -> Callable[[], Awaitable[Section]]:
        children = [(c.title, sections[c.id].text) for c in node.children if c.id in sections]
        known = sorted({k for _, text in children for k in find_citations(text)})
        prompt = render_prompt(
            "write_parent",
            **parent_context(
                survey_title=self.outline.title,
                node=node,
                children=children,
                words=self.lengths.words(node.id),
                language=self.options.language,
                budget_tokens=self.options.budget_tokens,
            ),
        )
        # Its children as revised to cite uncovered papers, which depends on every leaf.
        needs = [f"section/{leaf}" for leaf in leaves]
        needs += [f"{part}/{c.id}" for c in node.children for part in ("section", "cover")]

        async def make() -> Section:
            task = f"section/{node.id}"
            raw = await self._text(prompt, node.id, task, needs)
            return await self._checked(node.id, raw, known, task=task)

        version = _version(prompt, verify=self.options.verify)
        return lambda: self.memo(
            f"state/sections/{state_name(node.id)}.json",
            version,
            Section.from_json,
            make,
            _reusable_section,
        )

    def _central_papers(self) -> list[EvidenceItem]:
        """Papers by the weight of their evidence over the survey, heaviest first."""
        weight: dict[str, float] = {}
        best: dict[str, SectionEvidence] = {}
        for items in self.evidence.values():
            for e in items:
                weight[e.paper.key] = weight.get(e.paper.key, 0.0) + e.digest.confidence
                if (
                    e.paper.key not in best
                    or e.digest.confidence > best[e.paper.key].digest.confidence
                ):
                    best[e.paper.key] = e
        ranked = sorted(weight, key=lambda k: (-weight[k], k))[:INTRO_PAPERS]
        return [_item(best[k]) for k in ranked]

    def _part(
        self,
        node_id: str,
        prompt: Prompt,
        keys: Sequence[str] | None,
        needs: Sequence[str],
    ) -> Callable[[], Awaitable[Section]]:
        """The introduction or the conclusion: written, checked, saved."""

        async def make() -> Section:
            raw = await self._text(prompt, node_id, node_id, needs)
            return await self._checked(node_id, raw, keys, task=node_id)

        version = _version(prompt, verify=self.options.verify)
        path = f"state/sections/{node_id}.json"
        return lambda: self.memo(path, version, Section.from_json, make, _reusable_section)

    async def introduction(self, needs: Sequence[str] = EVIDENCE) -> dict[str, Section]:
        """The introduction, from the outline and the central papers (``needs``: what they
        come from); empty when it failed (with a warning)."""
        opts = self.options
        prompt = render_prompt(
            "write_intro",
            **intro_context(
                topic=opts.topic,
                outline=self.outline,
                items=self._central_papers(),
                words=self.lengths.introduction,
                language=opts.language,
                budget_tokens=opts.budget_tokens,
            ),
        )
        job = self._part(INTRODUCTION, prompt, None, needs)
        made, failures = await self._jobs("introduction", {INTRODUCTION: job})
        for node_id, reason in sorted(failures.items()):
            self.warn(f"the {node_id} could not be written: {reason}")
        return made

    async def conclusion(self, sections: Mapping[str, Section]) -> dict[str, Section]:
        """The conclusion, from the top-level sections; empty when it failed."""
        opts = self.options
        tops = [
            (node.title, sections[node.id].text)
            for node in self.outline.sections
            if node.id in sections
        ]
        # The conclusion may cite what the survey cites (it reads the top-level sections).
        known = sorted({k for section in sections.values() for k in find_citations(section.text)})
        prompt = render_prompt(
            "write_conclusion",
            **conclusion_context(
                survey_title=self.outline.title,
                sections=tops,
                words=self.lengths.conclusion,
                language=opts.language,
                budget_tokens=opts.budget_tokens,
            ),
        )
        job = self._part(CONCLUSION, prompt, known, ("section", "cover"))
        made, failures = await self._jobs("conclusion", {CONCLUSION: job})
        for node_id, reason in sorted(failures.items()):
            self.warn(f"the {node_id} could not be written: {reason}")
        return made

    async def abstract(self, made: Mapping[str, Section]) -> str:
        """The abstract, from the introduction and the conclusion in ``made``."""
        opts = self.options
        abstract_prompt = render_prompt(
            "write_abstract",
            **abstract_context(
                survey_title=self.outline.title,
                section_titles=[n.title for n in self.outline.sections],
                introduction=made[INTRODUCTION].text if INTRODUCTION in made else "",
                conclusion=made[CONCLUSION].text if CONCLUSION in made else "",
                words=self.lengths.abstract,
                language=opts.language,
                budget_tokens=opts.budget_tokens,
            ),
        )

        async def make_abstract() -> Section:
            text = await self._text(
                abstract_prompt, "abstract", "abstract", (INTRODUCTION, CONCLUSION)
            )
            return Section("abstract", guard_citations(text, ()).text)  # an abstract cites none

        try:
            abstract = await self.memo(
                "state/sections/abstract.json",
                _version(abstract_prompt),
                Section.from_json,
                make_abstract,
            )
        except FATAL:
            raise
        except LLMError as exc:
            self.warn(f"the abstract could not be written: {exc.message}")
            return ""
        return abstract.text

    async def headings(self) -> dict[str, str]:
        """Headings and fixed labels in the survey's language (one call), English on failure."""
        if self.options.language.strip().lower() in ENGLISH:
            return {}
        # Outline ids as they are; everything else under "@", which no outline id uses.
        source = {node.id: node.title for node, _ in self.outline.walk()}
        source.update({f"@{name}": text for name, text in _FIXED_HEADINGS.items()})
        source["@title"] = self.outline.title
        prompt = render_prompt(
            "write_headings", **headings_context(source, language=self.options.language)
        )

        async def make() -> _SavedHeadings:
            answer = await self.llm.structured(
                prompt,
                HeadingsAnswer,
                stage=STAGE,
                item="headings",
                task="headings",
                needs=("skeleton", "refine"),
            )
            got = {h.id: " ".join(h.text.split()) for h in answer.headings}
            return _SavedHeadings({k: got[k] for k in source if got.get(k)})

        try:
            saved = await self.memo(
                "state/headings.json", _version(prompt), _SavedHeadings.from_json, make
            )
        except FATAL:
            raise
        except LLMError as exc:
            self.warn(f"headings stay in English: translating them failed ({exc.message})")
            return {}
        return saved.headings

    # ------------------------------------------------------------------ the whole

    async def run(self) -> WriteOutcome:
        async with TaskScope() as scope:
            # These read only the outline and the evidence: made while the leaves are.
            early_intro = scope.start(self.introduction())
            early_tables = scope.start(self.tables())
            headings_job = scope.start(self.headings())
            sections = await self.leaves()
            if not sections:
                await asyncio.gather(early_intro, early_tables, headings_job)
                return WriteOutcome(
                    SurveyDoc(self.outline.title, "", ()),
                    self.outline,
                    {},
                    self.lengths,
                    failures=self.failures,
                )
            pruned = len(sections) < len(self.outline.leaves())
            if pruned:
                self.outline, _ = prune(self.outline, set(sections))
            covered = await self.cover(sections)
            await self.parents(sections)
            if pruned:
                # Made for sections that are now left out: made again without them (what
                # they read now depends on which leaves were written).
                await asyncio.gather(early_intro, early_tables)
                after = (*EVIDENCE, "section")
                intro_job = scope.start(self.introduction(after))
                tables_job = scope.start(self.tables(after))
            else:
                intro_job, tables_job = early_intro, early_tables
            made = dict(await self.conclusion(sections))
            made.update(await intro_job)
            sections.update(made)
            abstract = await self.abstract(made)
            tables = await tables_job
            headings = await headings_job
        degraded = sorted(i for i, s in sections.items() if not _reusable_section(s))
        if degraded:
            self.warn(
                f"calls failed while the citations of {', '.join(degraded)} were checked: "
                "unsupported citations were dropped instead of rewritten; --resume redoes them"
            )
        outcome = WriteOutcome(
            SurveyDoc(self.outline.title, abstract, ()),
            self.outline,
            sections,
            self.lengths,
            failures=self.failures,
            covered_by_revision=covered,
            checker=self.checker,
        )
        self._finish(outcome, sections, tables, headings)
        return outcome

    def _finish(
        self,
        outcome: WriteOutcome,
        sections: dict[str, Section],
        tables: Mapping[str, _SavedTable],
        headings: Mapping[str, str],
    ) -> None:
        # Every outline section keeps its heading, even a parent whose opening failed.
        walk = [node.id for node, _ in self.outline.walk()]
        order = [i for i in [INTRODUCTION] if i in sections] + walk
        order += [i for i in [CONCLUSION] if i in sections]
        texts_by_id = {i: sections[i].text if i in sections else "" for i in order}
        # A repeated sentence is removed from the part written later from the others: the
        # leaves keep theirs; parents, introduction and conclusion lose theirs.
        leaves = {leaf.id for leaf in self.outline.leaves()}
        priority = [i for i in order if i in leaves] + [i for i in order if i not in leaves]
        texts = [texts_by_id[i] for i in priority]
        sentences, removed = find_all(texts)
        outcome.duplicates = (sentences, len(removed))
        deduped = remove_found(texts, removed)
        # A part made only of repeats keeps them: an empty heading would read worse.
        emptied = {i for i, text in enumerate(deduped) if not text.strip() and texts[i].strip()}
        deduped = [texts[i] if i in emptied else text for i, text in enumerate(deduped)]
        outcome.duplicates_removed = sum(1 for d in removed if d.text_index not in emptied)
        final = dict(zip(priority, deduped, strict=True))
        for section in sections.values():
            self.counts.add(section.checks)
        outcome.counts = self.counts
        levels = {node.id: level for node, level in self.outline.walk()}
        titles = {node.id: node.title for node, _ in self.outline.walk()}
        titles.update({INTRODUCTION: "Introduction", CONCLUSION: "Conclusion"})
        doc_sections = []
        for node_id in order:
            saved = tables.get(node_id)
            heading = headings.get(f"@{node_id}" if node_id in _FIXED_HEADINGS else node_id)
            doc_sections.append(
                DocSection(
                    id=node_id,
                    title=heading or titles[node_id],
                    level=levels.get(node_id, 1),
                    text=final[node_id],
                    table=saved.table if saved is not None else None,
                )
            )
        cited = {k for text in final.values() for k in find_citations(text)}
        cited |= {row.key for s in doc_sections if s.table for row in s.table.rows}
        with_evidence = {e.paper.key for items in self.evidence.values() for e in items}
        outcome.uncovered = sorted(with_evidence - cited)
        outcome.tables = [
            {
                "node_id": node_id,
                "kept": saved.table is not None,
                "reason": saved.reason,
                "rows": len(saved.table.rows) if saved.table else 0,
                "cells_blanked": saved.cells_blanked,
                "rows_dropped": saved.rows_dropped,
            }
            for node_id, saved in tables.items()
        ]
        outcome.translated_headings = bool(headings)
        labels = Labels(
            **{
                name: headings.get(f"@{name}", default)
                for name, default in Labels().to_json().items()
            }
        )
        outcome.sections = {
            i: Section(i, final[i], sections[i].removed_citations, sections[i].checks)
            for i in order
            if i in sections
        }
        outcome.doc = SurveyDoc(
            title=headings.get("@title", self.outline.title),
            abstract=outcome.doc.abstract,
            sections=tuple(doc_sections),
            labels=labels,
            language=self.options.language,
        )


__all__ = [
    "Composer",
    "WriteOptions",
    "WriteOutcome",
    "evidence_weight",
    "owners",
    "verify_mode",
]
