"""Render ``references.bib``: the papers as BibTeX, for ``survey.tex`` and for pandoc.

Every value is brace-delimited and LaTeX-escaped by :mod:`surveygen.latex` (braces as
``{\\textbraceleft}``, since BibTeX counts braces without reading backslashes), so each field
is brace-balanced whatever the paper's metadata holds. URLs and DOIs are %-encoded where
needed and otherwise left verbatim: natbib's styles print them with ``\\url``/``\\doi``,
which read their argument as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from surveygen import __version__
from surveygen.latex import bib_url, escape_latex
from surveygen.library.keys import is_valid_key
from surveygen.models import Paper
from surveygen.stages.render_refs import (
    is_web_url,
    one_line,
    paper_arxiv_id,
    paper_doi,
    paper_url,
    short_title,
)

__all__ = ["bib_entry", "bib_name", "render_bibtex"]

# BibTeX splits an author list at the word "and" (in any case) outside braces.
_AND = re.compile(r"\band\b", re.IGNORECASE)


def render_bibtex(papers: Sequence[Paper]) -> str:
    """One entry per paper, in the given order (a key given twice is written once)."""
    seen: set[str] = set()
    entries = []
    for paper in papers:
        if paper.key not in seen:
            seen.add(paper.key)
            entries.append(bib_entry(paper))
    return f"% Written by surveygen {__version__}\n\n" + "\n".join(entries)


def bib_name(name: str) -> str:
    """One author for the ``author`` field, "Last, First" or "First Last" as given.

    A name BibTeX would misread -- containing the word "and", or more commas than "Last, Jr,
    First" has -- is braced whole, as is an already braced ("{OpenAI}") corporate name.
    """
    name = one_line(name)
    corporate = name.startswith("{") and name.endswith("}")
    name = name.replace("{", "").replace("}", "").strip()
    text = escape_latex(name, bibtex=True)
    if corporate or _AND.search(name) or name.count(",") > 2:
        return "{" + text + "}"
    return text


def _value(text: str) -> str:
    return escape_latex(one_line(text), bibtex=True)


def bib_entry(paper: Paper) -> str:
    """``@article`` when the paper has a venue (the journal), else ``@misc``."""
    if not is_valid_key(paper.key):  # the library only makes keys the citation parser reads
        raise ValueError(f"citation key {paper.key!r} cannot be used in BibTeX")
    venue = one_line(paper.venue or "")
    arxiv_id = paper_arxiv_id(paper)
    authors = [bib_name(a) for a in paper.authors if a.strip()]
    authors = [a for a in authors if a.strip("{}")]
    fields: list[tuple[str, str]] = []
    if authors:
        fields.append(("author", " and ".join(authors)))
    else:  # natbib's author-year label falls back on "key" (else the cite key's first letters)
        fields.append(("key", _value(short_title(paper.title))))
    fields.append(("title", "{" + _value(paper.title.replace("{", "").replace("}", "")) + "}"))
    if venue:
        fields.append(("journal", _value(venue)))
    elif arxiv_id:
        fields.append(("howpublished", _value(f"arXiv:{arxiv_id}")))
    if paper.year is not None:
        fields.append(("year", str(int(paper.year))))
    if paper_doi(paper):
        fields.append(("doi", bib_url(paper_doi(paper))))
    url = paper_url(paper)  # with the DOI resolver as a last resort: @misc prints no doi
    if is_web_url(url):
        fields.append(("url", bib_url(url)))
    if arxiv_id:
        fields.append(("eprint", _value(arxiv_id)))
        fields.append(("archivePrefix", "arXiv"))
    kind = "article" if venue else "misc"
    body = "".join(f"  {name} = {{{value}}},\n" for name, value in fields)
    return f"@{kind}{{{paper.key},\n{body}}}\n"
