"""report.json and the summary printed after a run."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from surveygen import __version__
from surveygen.models import Digest, Outline, Paper, Section


def build_report(
    pipeline: Any,
    topic: str,
    outline: Outline,
    sections: Mapping[str, Section],
    digests: Mapping[str, Digest],
    library: Mapping[str, Paper],
    survey: Any,
    ledger: Any,
) -> dict[str, Any]:
    body = survey.text.split("\n## References", 1)[0]
    with_evidence = sum(1 for d in digests.values() if d.nodes)
    removed = sum(len(s.removed_citations) for s in sections.values()) + len(survey.removed)
    return {
        "topic": topic,
        "surveygen_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "words": len(re.findall(r"\b\w+\b", body)),
        "sections": sum(1 for _ in outline.walk()),
        "leaf_sections": len(outline.leaves()),
        "depth": outline.depth,
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
            "reference_coverage": round(len(survey.cited) / len(library), 4) if library else 0.0,
            # anything still looking like a [@key] citation after numbering: must be 0
            "unresolved": len(re.findall(r"\[@[^\]]*\]", survey.text)),
            "removed_unknown_keys": removed,
            "removed_numeric_brackets": survey.stray_numeric,
        },
        "evidence": {
            "kept_quotes": sum(len(n.evidence) for d in digests.values() for n in d.nodes),
            "dropped_quotes": sum(d.dropped_quotes for d in digests.values()),
        },
        "pruned_sections": pipeline.pruned,
        "llm": ledger.to_json(),
        "seconds_per_stage": pipeline.timings,
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
        + f", {cites['distinct_cited']} cited "
        f"(coverage {cites['reference_coverage']:.0%}), {cites['removed_unknown_keys']} unknown "
        f"citation(s) removed, {report['evidence']['dropped_quotes']} unverifiable quote(s) "
        "dropped",
        *_outline_line(report),
        f"llm: {llm['calls']} calls, {llm['cache_hits']} cache hits, {llm['tokens_in']} tokens in, "
        f"{llm['tokens_out']} out, ${llm['cost_usd']:.4f}",
    ]
