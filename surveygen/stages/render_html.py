"""Render ``survey.html``: one standalone page (inline CSS, no external assets).

Section texts are Markdown, converted with Python-Markdown configured so that model text
cannot inject markup: its raw-HTML block and inline handlers are removed, so ``<script>`` is
text and comes out as ``&lt;script&gt;``; links stay links only for http(s) URLs; images become
their description. Citation groups are swapped for placeholder words before conversion and
become links to the reference list in the element tree after it -- never by editing the HTML
string -- with the paper's supporting quote (from ``quote_for``) as the hover text.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as etree
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypedDict

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor
from markupsafe import Markup

from surveygen.document import CitationStyle, SurveyDoc
from surveygen.models import Paper
from surveygen.stages.render_common import (
    CitationIndex,
    CitationMarks,
    LabelsView,
    ReferenceView,
    TableView,
    generated_by,
    guard_doc,
    labels_view,
    make_env,
    render_template,
    table_view,
)
from surveygen.stages.render_refs import is_web_url

__all__ = ["HtmlContext", "HtmlSectionView", "QuoteFor", "language_code", "render_html"]

# quote_for(text, offset, key): the supporting quote for the citation of ``key`` in the group
# starting at ``offset`` of ``text`` (a guarded section text or abstract), or None.
QuoteFor = Callable[[str, int, str], str | None]


class HtmlSectionView(TypedDict):
    id: str
    title: str
    level: int
    heading: int  # the h1-h6 level of the section's heading
    body: Markup  # HTML converted from the section's Markdown
    table: TableView | None  # plain-text cells (autoescaped), ``cite`` as Markup


class HtmlContext(TypedDict):
    """``survey.html.j2``; autoescaped, ``Markup`` fields are HTML made from escaped input."""

    title: str
    lang: str
    dir: str  # "ltr" or "rtl"
    abstract: Markup
    sections: list[HtmlSectionView]
    references: list[ReferenceView]  # each anchored as id="ref-<n>"
    labels: LabelsView
    style: CitationStyle  # "numeric" or "author-year"
    generated_by: str


def render_html(
    doc: SurveyDoc,
    papers: Mapping[str, Paper],
    *,
    style: CitationStyle = "numeric",
    quote_for: QuoteFor | None = None,
    user_dir: Path | None = None,
) -> str:
    """Render ``survey.html``; the pandoc style prints as numeric."""
    html_style: CitationStyle = "author-year" if style == "author-year" else "numeric"
    guarded, _, _ = guard_doc(doc, papers.keys())
    index = CitationIndex.build(guarded, papers, html_style)
    converter = _Converter(index, quote_for)
    abstract = converter.convert(guarded.abstract, 1)  # first: quote_for is asked in reading order
    sections: list[HtmlSectionView] = []
    tables = 0
    for section in guarded.sections:
        table: TableView | None = None
        if section.table is not None:
            tables += 1
            table = table_view(section.table, tables, guarded.labels, converter.row_cite)
        level = max(section.level, 1)
        sections.append(
            HtmlSectionView(
                id=section.id,
                title=section.title,
                level=level,
                heading=min(level + 1, 6),
                body=converter.convert(section.text, level),
                table=table,
            )
        )
    lang = language_code(guarded.language)
    context = HtmlContext(
        title=guarded.title,
        lang=lang,
        dir="rtl" if lang in _RTL else "ltr",
        abstract=abstract,
        sections=sections,
        references=index.references(papers),
        labels=labels_view(guarded.labels),
        style=html_style,
        generated_by=generated_by(),
    )
    return render_template(make_env("html", user_dir), "survey.html.j2", context, user_dir)


# --- language --------------------------------------------------------------------------------

_LANGUAGES = {
    "english": "en",
    "german": "de",
    "deutsch": "de",
    "french": "fr",
    "français": "fr",
    "francais": "fr",
    "spanish": "es",
    "español": "es",
    "espanol": "es",
    "italian": "it",
    "italiano": "it",
    "portuguese": "pt",
    "português": "pt",
    "dutch": "nl",
    "nederlands": "nl",
    "swedish": "sv",
    "danish": "da",
    "norwegian": "no",
    "finnish": "fi",
    "polish": "pl",
    "czech": "cs",
    "greek": "el",
    "turkish": "tr",
    "russian": "ru",
    "ukrainian": "uk",
    "arabic": "ar",
    "hebrew": "he",
    "persian": "fa",
    "farsi": "fa",
    "hindi": "hi",
    "bengali": "bn",
    "indonesian": "id",
    "vietnamese": "vi",
    "thai": "th",
    "chinese": "zh",
    "simplified chinese": "zh-Hans",
    "traditional chinese": "zh-Hant",
    "中文": "zh",
    "japanese": "ja",
    "日本語": "ja",
    "korean": "ko",
    "한국어": "ko",
}
_RTL = {"ar", "he", "fa"}


def language_code(language: str) -> str:
    """The BCP 47 code of a language name ("German" -> "de"); "en" for a name not known."""
    return _LANGUAGES.get(" ".join(language.split()).casefold(), "en")


# --- Markdown to HTML ------------------------------------------------------------------------


class _Converter:
    """Markdown to HTML for one survey: one Markdown instance, reset for each text."""

    def __init__(self, index: CitationIndex, quote_for: QuoteFor | None) -> None:
        self.index = index
        self.quote_for = quote_for
        self.finisher = _Finisher(self)
        self.md = markdown.Markdown(
            extensions=["fenced_code", "sane_lists", _SafeMarkdown(self.finisher)],
            output_format="html",
        )
        self.citations: CitationMarks | None = None
        self.level = 1

    def convert(self, text: str, level: int) -> Markup:
        if not text.strip():
            return Markup("")
        self.citations = CitationMarks(text)
        self.level = level
        self.md.reset()
        # Python-Markdown's output is built from escaped text and our own elements only
        return Markup(self.md.convert(self.citations.text))

    def row_cite(self, key: str) -> Markup:
        link = self.link(key, self.index.row(key), None)
        return Markup(etree.tostring(link, encoding="unicode", method="html"))

    def link(self, key: str, text: str, quote: str | None) -> etree.Element:
        element = etree.Element("a", {"class": "cite", "href": f"#ref-{self.index.numbers[key]}"})
        if quote:
            element.set("title", " ".join(quote.split()))
        element.text = text
        return element

    def group_nodes(self, number: int) -> list[str | etree.Element]:
        """The HTML of citation group ``number``: one link for a single paper ("[3]"), else
        "[1, <links>]"-style text and links, each with its paper's quote."""
        citations = self.citations
        assert citations is not None
        keys = citations.groups[number]
        offset = citations.offsets[number]

        def quote(key: str) -> str | None:
            if self.quote_for is None:
                return None
            return self.quote_for(citations.source, offset, key)

        items = self.index.items(keys)
        if len(items) == 1:
            key = items[0][0]
            return [self.link(key, self.index.group(keys), quote(key))]
        opening, closing = self.index.brackets()
        separator = "; " if self.index.style == "author-year" else ", "
        nodes: list[str | etree.Element] = [opening]
        for i, (key, text) in enumerate(items):
            if i:
                nodes.append(separator)
            nodes.append(self.link(key, text, quote(key)))
        nodes.append(closing)
        return nodes

    def plain(self, number: int) -> str:
        assert self.citations is not None
        return self.index.group(self.citations.groups[number])


class _SafeMarkdown(Extension):
    """No raw HTML from the text; our tree processor finishes links, images and citations."""

    def __init__(self, finisher: Treeprocessor) -> None:
        super().__init__()
        self.finisher = finisher

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        self.finisher.md = md
        # after "inline" (20) and "prettify" (10): the tree holds the final elements
        md.treeprocessors.register(self.finisher, "surveygen_finish", 5)


class _Finisher(Treeprocessor):
    def __init__(self, converter: _Converter) -> None:
        super().__init__()
        self.converter = converter

    def run(self, root: etree.Element) -> None:
        self._visit(root)

    def _visit(self, element: etree.Element) -> None:
        tag = element.tag
        if isinstance(tag, str) and re.fullmatch(r"h[1-6]", tag):
            # headings inside a text sit below the section's own heading
            element.tag = f"h{min(int(tag[1]) + self.converter.level + 1, 6)}"
        elif tag == "a" and not is_web_url(element.get("href", "")):
            element.tag = "span"
            element.attrib.clear()
        elif tag == "img":
            alt = element.get("alt", "")
            element.tag = "span"
            element.attrib.clear()
            element.text = alt
        citations = self.converter.citations
        assert citations is not None
        for name, value in list(element.attrib.items()):
            element.set(
                name, citations.pattern.sub(lambda m: self.converter.plain(int(m[1])), value)
            )
        for child in list(element):
            self._visit(child)
        self._expand_text(element)
        for child in list(element):
            self._expand_tail(element, child)

    def _split(self, text: str | None) -> list[str | etree.Element] | None:
        citations = self.converter.citations
        assert citations is not None
        if not text or not citations.pattern.search(text):
            return None
        nodes: list[str | etree.Element] = []
        pos = 0
        for match in citations.pattern.finditer(text):
            nodes.append(text[pos : match.start()])
            nodes.extend(self.converter.group_nodes(int(match.group(1))))
            pos = match.end()
        nodes.append(text[pos:])
        return nodes

    def _expand_text(self, element: etree.Element) -> None:
        nodes = self._split(element.text)
        if nodes is None:
            return
        element.text = ""
        _splice(element, 0, None, nodes)

    def _expand_tail(self, parent: etree.Element, child: etree.Element) -> None:
        nodes = self._split(child.tail)
        if nodes is None:
            return
        child.tail = ""
        _splice(parent, list(parent).index(child) + 1, child, nodes)


def _splice(
    parent: etree.Element, at: int, before: etree.Element | None, nodes: list[str | etree.Element]
) -> None:
    """Insert text and elements into ``parent`` at child position ``at``; text goes to the
    tail of the element before it (``before``, or the parent's own text)."""
    last = before
    for node in nodes:
        if isinstance(node, str):
            if last is None:
                parent.text = (parent.text or "") + node
            else:
                last.tail = (last.tail or "") + node
        else:
            parent.insert(at, node)
            at += 1
            last = node
