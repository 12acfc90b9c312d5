"""Rendering survey.html: golden file, no markup from model or paper text, citations linked to
the reference list with their supporting quote as hover text.

Regenerate the golden file with ``SURVEYGEN_UPDATE_GOLDEN=1 pytest tests/test_render_html.py``.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from renderdata import HOSTILE, check_golden, hostile_doc, hostile_papers, make_doc, make_papers

from surveygen.document import DocSection, SurveyDoc
from surveygen.models import Paper
from surveygen.stages.render import guard_doc, render_html
from surveygen.stages.render_html import language_code


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of each element with an id."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def fixture_quote(text: str, offset: int, key: str) -> str | None:
    """A quote naming what it was asked about, or None for one paper."""
    if key == "vaswani2017attention":
        return None
    end = text.index("]", offset) + 1
    return f'{key} supports "{text[offset:end]}" <here> & there'


# --- golden file -------------------------------------------------------------------------------


def test_survey_html_matches_golden() -> None:
    check_golden("survey.html", render_html(make_doc(), make_papers(), quote_for=fixture_quote))


def test_standalone_page() -> None:
    html = render_html(make_doc(), make_papers())
    page = Page(html)
    assert html.startswith("<!DOCTYPE html>\n")
    assert page.all("meta")[0] == {"charset": "utf-8"}
    assert page.all("html") == [{"lang": "en", "dir": "ltr"}]
    assert not page.all("link") and not page.all("script") and not page.all("img")
    assert all("src" not in attrs for _, attrs in page.tags)
    assert len(page.all("style")) == 1


# --- citations ---------------------------------------------------------------------------------


def test_every_citation_links_to_a_reference() -> None:
    page = Page(render_html(make_doc(), make_papers()))
    ids = {attrs["id"] for _, attrs in page.tags if attrs.get("id", "").startswith("ref-")}
    targets = {attrs["href"] for attrs in page.all("a") if attrs.get("class") == "cite"}
    assert ids == {f"ref-{n}" for n in range(1, 6)}
    assert targets == {f"#{ref}" for ref in ids}


def test_numeric_groups_and_table_rows() -> None:
    html = render_html(make_doc(), make_papers())
    assert 'generation <a class="cite" href="#ref-1">[1]</a>.' in html
    assert (
        'end to end [<a class="cite" href="#ref-1">1</a>, <a class="cite" href="#ref-2">2</a>, '
        '<a class="cite" href="#ref-3">3</a>].'
    ) in html
    assert '<tr><td><a class="cite" href="#ref-5">[5]</a></td><td>Knowledge retriever</td>' in html
    assert "<caption>Table 1: Dense retrievers compared</caption>" in html


def test_pandoc_style_prints_numeric() -> None:
    papers = make_papers()
    assert render_html(make_doc(), papers, style="pandoc") == render_html(make_doc(), papers)


def test_author_year_links_show_labels() -> None:
    html = render_html(make_doc(), make_papers(), style="author-year")
    assert '<a class="cite" href="#ref-1">(Lewis and Perez, 2020)</a>' in html
    assert (
        '(<a class="cite" href="#ref-1">Lewis and Perez, 2020</a>; '
        '<a class="cite" href="#ref-2">Guu, 2020a</a>)'
    ) in html
    assert '<td><a class="cite" href="#ref-5">Guu (2020b)</a></td>' in html
    assert '<li id="ref-5">Guu, K. (2020b). Another REALM Study. ICML.' in html


def test_quote_for_gets_the_guarded_text_and_the_group_offset() -> None:
    calls: list[tuple[str, int, str]] = []

    def quote_for(text: str, offset: int, key: str) -> str | None:
        calls.append((text, offset, key))
        return None

    papers = make_papers()
    render_html(make_doc(), papers, quote_for=quote_for)
    guarded, _, _ = guard_doc(make_doc(), papers.keys())
    texts = {guarded.abstract} | {section.text for section in guarded.sections}
    assert len(calls) == 9  # one per key of each group in the texts; table rows have none
    for text, offset, key in calls:
        assert text in texts
        group = text[offset : text.index("]", offset) + 1]
        assert group.startswith("[@") and f"@{key}" in group
    assert [key for _, _, key in calls] == [  # reading order; in a group, by number
        "lewis2020retrieval",
        "lewis2020retrieval",
        "guu2020realm",
        "vaswani2017attention",
        "karpukhin2020dense",
        "lewis2020retrieval",
        "guu2020realm",
        "vaswani2017attention",
        "guu2020realm",
    ]
    text, offset, _ = calls[6]
    assert text[offset:].startswith("[@guu2020realm; @vaswani2017attention; @lewis2020retrieval]")


def test_quote_is_escaped_hover_text() -> None:
    hostile = '"><script>alert(1)</script> & <b>'
    html = render_html(make_doc(), make_papers(), quote_for=lambda text, offset, key: hostile)
    page = Page(html)
    assert not page.all("script") and not page.all("b")
    titles = [attrs.get("title") for attrs in page.all("a") if attrs.get("class") == "cite"]
    assert titles.count(hostile) == 9 and set(titles) == {hostile, None}  # None: table rows
    assert 'title="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;"' in html


def test_golden_quotes_are_per_key() -> None:
    page = Page(render_html(make_doc(), make_papers(), quote_for=fixture_quote))
    titles = [attrs.get("title") for attrs in page.all("a") if attrs.get("class") == "cite"]
    assert 'guu2020realm supports "[@lewis2020retrieval; @guu2020realm]" <here> & there' in titles
    assert None in titles  # vaswani2017attention has no quote: no title attribute


# --- model text cannot inject markup -----------------------------------------------------------


def test_hostile_text_stays_text() -> None:
    html = render_html(hostile_doc(), hostile_papers())
    page = Page(html)
    assert not page.all("script")
    assert not page.all("img")
    for _, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs)
    for attrs in page.all("a"):
        href = attrs["href"] or ""
        assert href.startswith(("#ref-", "https://")), href
    # the text arrives escaped, and reads as written
    assert "<script>" not in html and "</script><script>" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "& {#tags}" not in html and "&amp; {#tags}" in html
    assert HOSTILE in "".join(page.text)
    assert "深度学习 😀" in html


def test_hostile_reference_url_is_quoted() -> None:
    html = render_html(hostile_doc(), hostile_papers())
    hrefs = [a["href"] for a in Page(html).all("a") if not (a["href"] or "").startswith("#")]
    assert hrefs == [
        "https://example.org/a_b%20c#frag~x%22%3E%3Cscript%3Ealert(1)%3C/script%3E%7B%5C%7D"
    ]


@pytest.mark.parametrize(
    "markdown",
    [
        "[x](javascript:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "<javascript:alert(1)>",
        "![x](javascript:alert(1))",
        "![x](https://tracker.example/pixel.png)",
        "[x][r]\n\n[r]: javascript:alert(1)",
        "\\<script\\>alert(1)\\</script\\>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "<div onclick=alert(1)>x</div>",
        "<!-- <script>alert(1)</script> -->",
        "```\n</code></pre><script>alert(1)</script>\n```",
    ],
)
def test_no_markup_injection(markdown: str) -> None:
    doc = SurveyDoc("T", "", (DocSection("s", "S", 1, markdown),))
    page = Page(render_html(doc, {}))
    body = [tag for tag, _ in page.tags if tag not in ("html", "head", "meta", "title", "style")]
    assert "script" not in body and "img" not in body and "div" not in body
    for attrs in page.all("a") + page.all("span"):
        assert not (attrs.get("href") or "").lower().startswith(("javascript", "data"))
        assert not any(name.startswith("on") for name in attrs)


def test_web_links_and_headings_in_text() -> None:
    doc = SurveyDoc(
        "T", "", (DocSection("s", "S", 2, "# Inner\n\n[a](https://x.org/?a=1&b=2) [b](/local)"),)
    )
    html = render_html(doc, {})
    assert "<h3>S</h3>" in html
    assert "<h4>Inner</h4>" in html  # a text's headings sit below its section's
    assert '<a href="https://x.org/?a=1&amp;b=2">a</a> <span>b</span>' in html


def test_citation_in_link_title_and_code() -> None:
    papers = {"a": Paper("a", "A", ("Ann Author",), 2020)}
    doc = SurveyDoc("T", "", (DocSection("s", "S", 1, "`x` [@a]\n\n    code [@a]\n"),))
    html = render_html(doc, papers)
    assert '<code>x</code> <a class="cite" href="#ref-1">[1]</a>' in html
    assert '<pre><code>code <a class="cite" href="#ref-1">[1]</a>\n</code></pre>' in html


# --- language ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "code"),
    [("English", "en"), ("german", "de"), (" Simplified  Chinese ", "zh-Hans"), ("Klingon", "en")],
)
def test_language_code(language: str, code: str) -> None:
    assert language_code(language) == code


def test_rtl_languages_set_dir() -> None:
    doc = SurveyDoc("T", "", (), language="Arabic")
    assert '<html lang="ar" dir="rtl">' in render_html(doc, {})
