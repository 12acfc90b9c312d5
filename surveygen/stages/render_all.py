"""Every output a run asks for (``--format``), from the written survey.

``references.bib`` is written with ``tex`` (the LaTeX cites it), with ``bib``, and with
``--citation-style pandoc`` (Pandoc resolves ``[@key]`` against it). It holds the cited
papers in citation order, or with ``--bib-all`` every paper kept, cited ones first. The report
is always measured on a numeric Markdown rendering made with the built-in template, whatever
style and templates the user chose, so figures compare across runs and with other tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from surveygen.check import CheckReport, check_survey
from surveygen.config import Settings
from surveygen.document import Labels
from surveygen.models import Digest, Paper
from surveygen.stages.render import (
    RenderedSurvey,
    render_bibtex,
    render_html,
    render_latex,
    render_markdown,
)
from surveygen.support import SupportChecker, evidence_passages, sentence_at

BIB_NAME = "references"


@dataclass(frozen=True)
class Rendered:
    files: dict[str, str]  # run-directory file name -> content
    measured: RenderedSurvey  # the numeric Markdown the report is measured on
    check: CheckReport
    bib_keys: tuple[str, ...]  # what references.bib lists (when written)


def quote_finder(
    library: Mapping[str, Paper],
    digests: Mapping[str, Digest],
    checker: SupportChecker | None = None,
) -> Any:
    """``quote_for(text, offset, key)``: the paper's own words best supporting the sentence
    that holds the citation at ``offset`` (``checker``: the write stage's, when at hand)."""
    if checker is None:
        checker = SupportChecker(
            {key: evidence_passages(paper, digests.get(key)) for key, paper in library.items()}
        )

    def quote_for(text: str, offset: int, key: str) -> str | None:
        sentence = sentence_at(text, offset)
        return checker.best_quote(sentence.text if sentence else text, key)

    return quote_for


def render_outputs(
    outcome: Any, library: Mapping[str, Paper], digests: Mapping[str, Digest], settings: Settings
) -> Rendered:
    doc = outcome.doc
    style = settings.citation_style
    user_dir = settings.templates_dir
    formats = settings.formats
    # Measured in English labels: `surveygen check` finds the References and Abstract by name.
    measured = render_markdown(replace(doc, labels=Labels()), library, style="numeric")
    files: dict[str, str] = {}
    if "md" in formats:
        files["survey.md"] = (
            measured.text
            if style == "numeric" and user_dir is None and doc.labels == Labels()
            else render_markdown(doc, library, style=style, user_dir=user_dir).text
        )
    if "tex" in formats:
        files["survey.tex"] = render_latex(
            doc, library, style=style, user_dir=user_dir, bib_name=BIB_NAME
        )
    if "html" in formats:
        files["survey.html"] = render_html(
            doc,
            library,
            style=style,
            quote_for=quote_finder(library, digests, getattr(outcome, "checker", None)),
            user_dir=user_dir,
        )
    keys = measured.cited
    if settings.bib_all:
        keys = keys + tuple(k for k in library if k not in set(keys))
    wants_bib = "bib" in formats or "tex" in formats or ("md" in formats and style == "pandoc")
    if wants_bib:
        files[f"{BIB_NAME}.bib"] = render_bibtex([library[k] for k in keys])
    return Rendered(
        files,
        measured,
        check_survey(measured.text, require_references=False),
        keys if wants_bib else (),
    )


__all__ = ["BIB_NAME", "Rendered", "quote_finder", "render_outputs"]
