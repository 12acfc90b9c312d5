"""report.json and the summary printed after a run."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from surveygen import __version__
from surveygen.models import Digest, Paper


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def build_report(
    pipeline: Any,
    topic: str,
    outcome: Any,
    digests: Mapping[str, Digest],
    library: Mapping[str, Paper],
    rendered: Any,
    ledger: Any,
) -> dict[str, Any]:
    """report.json. Structure, words and duplicates are measured by ``surveygen check`` on
    the numeric Markdown, so they compare with any other survey checked the same way."""
    check = rendered.check
    survey = rendered.measured
    counts = outcome.counts
    with_evidence = sum(1 for d in digests.values() if d.nodes)
    removed = sum(len(s.removed_citations) for s in outcome.sections.values()) + len(survey.removed)
    return {
        "topic": topic,
        "surveygen_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "words": check.words,
        "sections": check.sections,
        "leaf_sections": len(outcome.outline.leaves()),
        "depth": check.depth,
        "language": outcome.doc.language,
        "length": {**outcome.lengths.to_json(), "written": check.words},
        "papers": {
            **(pipeline.gather_report.to_json() if pipeline.gather_report is not None else {}),
            "kept": len(library),
            "digested": len(digests),
            "digest_failed": pipeline.digest_failures,
            "with_evidence": with_evidence,
            "read_in_chunks": sum(1 for d in digests.values() if d.chunks > 1),
            "redigested_for_final_outline": pipeline.redigested,
        },
        "outline": {
            "source": pipeline.outline_source,
            "suggestions": pipeline.suggestions,
            "refinement": pipeline.refine_report,
        },
        "citations": {
            "distinct_cited": len(survey.cited),
            "reference_coverage": _rate(len(survey.cited), len(library)),
            "evidence_coverage": _rate(with_evidence - len(outcome.uncovered), with_evidence),
            "uncited_with_evidence": outcome.uncovered,
            "cited_by_revision": outcome.covered_by_revision,
            # numbers without a reference entry, plus any [@key] left unconverted: must be 0
            "unresolved": len(check.unresolved) + len(re.findall(r"\[@[^\]]*\]", survey.text)),
            "removed_unknown_keys": removed,
            "removed_numeric_brackets": survey.stray_numeric,
            "verify": pipeline.verify,
            "checked": counts.checked,
            "unsupported_as_written": counts.unsupported,
            "unsupported_rate": _rate(counts.unsupported, counts.checked),
            "check": counts.to_json(),
            "per_1000_words": check.citations_per_1000_words,
            "bib_entries": len(rendered.bib_keys),
        },
        "duplicates": {
            "sentences": outcome.duplicates[0],
            "duplicate_sentences_written": outcome.duplicates[1],
            "duplicate_rate_written": _rate(outcome.duplicates[1], outcome.duplicates[0]),
            "removed": outcome.duplicates_removed,
            "duplicate_rate": check.duplicate_sentence_rate,
        },
        "tables": outcome.tables,
        "evidence": {
            "kept_quotes": sum(len(n.evidence) for d in digests.values() for n in d.nodes),
            "dropped_quotes": sum(d.dropped_quotes for d in digests.values()),
        },
        "pruned_sections": pipeline.pruned,
        "llm": ledger.to_json(),
        "seconds_per_stage": pipeline.timings,
        "cpu_seconds_per_stage": pipeline.cpu,
        "peak_memory_mb_by_stage_end": pipeline.peak_mb,
        "settings": pipeline.settings.describe(),
        "warnings": pipeline.warnings,
    }


def _outline_line(report: Mapping[str, Any]) -> list[str]:
    """How refinement moved the outline's score, when it ran."""
    refinement = (report.get("outline") or {}).get("refinement") or {}
    if report.get("outline", {}).get("source") == "user":
        return ["outline: yours (--outline), refinement skipped"]
    initial = (refinement.get("initial") or {}).get("score")
    final = (refinement.get("score") or {}).get("score")
    if initial is None or final is None:
        return []
    layers = refinement.get("layers") or []
    accepted = sum(layer.get("accepted", 0) for layer in layers)
    return [
        f"outline: score {initial:.3f} -> {final:.3f} over {len(layers)} layer(s), "
        f"{accepted} candidate(s) accepted"
    ]


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The short quality summary printed on stderr after a run."""
    llm = report["llm"]
    cites = report["citations"]
    return [
        f"survey: {report['words']} words, {report['sections']} sections (depth {report['depth']})",
        f"papers: {report['papers']['kept']} kept"
        + (
            f" of {report['papers']['found']} found ({report['papers']['duplicates']} "
            f"duplicates, {report['papers']['dropped']} dropped by ranking)"
            if report["papers"].get("found")
            else ""
        )
        + f", {cites['distinct_cited']} cited (coverage {cites['reference_coverage']:.0%})",
        f"citations: {cites['unresolved']} unresolved, {cites['removed_unknown_keys']} unknown "
        f"key(s) removed, {cites['unsupported_as_written']} of {cites['checked']} unsupported "
        f"as written ({cites['unsupported_rate']:.0%}), {cites['check']['rewritten']} "
        f"sentence(s) rewritten, {cites['check']['dropped']} citation(s) dropped; "
        f"{report['evidence']['dropped_quotes']} unverifiable quote(s) dropped",
        f"duplicates: {report['duplicates']['removed']} repeated sentence(s) removed, "
        f"rate now {report['duplicates']['duplicate_rate']:.1%}",
        *_outline_line(report),
        f"llm: {llm['calls']} calls, {llm['cache_hits']} cache hits, {llm['tokens_in']} tokens in, "
        f"{llm['tokens_out']} out, ${llm['cost_usd']:.4f}",
        "time: "
        + ", ".join(f"{stage} {secs:.1f}s" for stage, secs in report["seconds_per_stage"].items()),
    ]
