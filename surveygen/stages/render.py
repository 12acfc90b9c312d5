"""Render: the finished survey and the editable outline, through Jinja templates.

Templates live in the top-level ``templates/`` folder (bundled in the wheel); a user folder,
if given, is searched first, so a user overrides one template by dropping a file of the same
name there (mkdocs' ``custom_dir``). Every template gets a typed context (the ``*View`` and
``*Context`` TypedDicts below) and renders with StrictUndefined, so a misspelt variable fails
loudly instead of printing nothing.

Citations are guarded here once more (the write stage guards too): a survey never ships a key
that is not in the library, and never a number the model invented.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict

import jinja2

from surveygen import __version__
from surveygen.citations import citation_order, guard_citations, to_numeric
from surveygen.errors import InputError
from surveygen.models import Outline, Paper, Section
from surveygen.resources import resource_dir

TemplateKind = Literal["md", "tex", "html"]

# nbconvert-style delimiters: braces, "%" and "#" all mean something to LaTeX.
_TEX_SYNTAX = {
    "block_start_string": "((*",
    "block_end_string": "*))",
    "variable_start_string": "(((",
    "variable_end_string": ")))",
    "comment_start_string": "((=",
    "comment_end_string": "=))",
}


def make_env(kind: TemplateKind, user_dir: Path | None = None) -> jinja2.Environment:
    """A fresh Jinja environment for one output kind; ``user_dir`` is searched first."""
    if kind not in ("md", "tex", "html"):
        raise ValueError(f"unknown template kind {kind!r}; expected 'md', 'tex' or 'html'")
    search: list[str] = []
    if user_dir is not None:
        if not Path(user_dir).is_dir():
            raise InputError(
                f"template directory {user_dir} does not exist or is not a folder",
                hint="create it, or set templates_dir to an existing folder",
            )
        search.append(str(user_dir))
    search.append(str(resource_dir("templates")))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=kind == "html",
        **(_TEX_SYNTAX if kind == "tex" else {}),
    )
    env.filters["period"] = end_sentence
    env.filters["escape_latex"] = escape_latex
    return env


def render_template(
    env: jinja2.Environment, name: str, context: Mapping[str, object], user_dir: Path | None
) -> str:
    """Render ``name``; a broken *user* template is an InputError naming the file.

    A failing built-in template is a bug in surveygen, so its error propagates unchanged.
    """
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as err:
        user_file = Path(user_dir) / name if user_dir is not None else None
        if user_file is None or not user_file.is_file():
            raise
        raise InputError(
            f"template {user_file}: {err}",
            hint="fix the template, or remove it to use the built-in one",
        ) from err


# --- template contexts -----------------------------------------------------------------------


class SectionView(TypedDict):
    id: str
    title: str
    level: int  # 1 = top-level section
    text: str  # numeric citations already in place; "" if not written (yet)


class ReferenceView(TypedDict):
    n: int
    key: str
    authors: str  # up to three names, then "et al."
    title: str
    venue_or_id: str  # venue, else "arXiv:ID", else ""
    year: int | None
    url: str  # url, else the arXiv abstract page, else the DOI resolver, else ""


class SurveyContext(TypedDict):
    title: str
    abstract: str
    sections: list[SectionView]  # flat, in reading order; nesting is given by level
    references: list[ReferenceView]  # cited papers only, in citation-number order
    generated_by: str


class OutlineNodeView(TypedDict):
    id: str
    title: str
    level: int
    description: str


class OutlineContext(TypedDict):
    title: str
    sections: list[OutlineNodeView]


# --- the survey ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardedSurvey:
    """Abstract and section texts with only known citations left, numbered in reading order."""

    abstract: str
    texts: dict[str, str]  # node id -> guarded text, still citing as [@key]
    numbers: dict[str, int]  # key -> citation number, first use first
    removed: tuple[str, ...]
    stray_numeric: int


@dataclass(frozen=True)
class RenderedSurvey:
    text: str
    cited: tuple[str, ...]  # keys in citation-number order
    removed: tuple[str, ...]  # unknown keys removed, first seen first
    stray_numeric: int


def guard_survey(
    outline: Outline,
    sections: Mapping[str, Section],
    papers: Mapping[str, Paper],
    *,
    abstract: str = "",
) -> GuardedSurvey:
    """Guard every text against the library and number citations in reading order."""
    removed: dict[str, None] = {}
    stray = 0

    def guard(text: str) -> str:
        nonlocal stray
        result = guard_citations(text, papers.keys())
        removed.update(dict.fromkeys(result.removed))
        stray += result.stray_numeric
        return tidy(result.text)

    guarded_abstract = guard(abstract)
    texts = {
        node.id: guard(sections[node.id].text) for node, _ in outline.walk() if node.id in sections
    }
    reading_order = [guarded_abstract] + [texts.get(node.id, "") for node, _ in outline.walk()]
    return GuardedSurvey(
        abstract=guarded_abstract,
        texts=texts,
        numbers=citation_order(reading_order),
        removed=tuple(removed),
        stray_numeric=stray,
    )


def survey_context(
    outline: Outline, guarded: GuardedSurvey, papers: Mapping[str, Paper]
) -> SurveyContext:
    """The Markdown template's context: numeric citations, references in citation order."""
    numbers = guarded.numbers
    return SurveyContext(
        title=one_line(outline.title),
        abstract=to_numeric(guarded.abstract, numbers),
        sections=[
            SectionView(
                id=node.id,
                title=one_line(node.title),
                level=level,
                text=to_numeric(guarded.texts.get(node.id, ""), numbers),
            )
            for node, level in outline.walk()
        ],
        references=[reference_view(n, papers[key]) for key, n in numbers.items()],
        generated_by=f"surveygen {__version__}",
    )


def render_markdown(
    outline: Outline,
    sections: Mapping[str, Section],
    papers: Mapping[str, Paper],
    *,
    user_dir: Path | None = None,
    abstract: str = "",
) -> RenderedSurvey:
    """Render ``survey.md``: guard, number citations in reading order, fill the template."""
    guarded = guard_survey(outline, sections, papers, abstract=abstract)
    context = survey_context(outline, guarded, papers)
    text = render_template(make_env("md", user_dir), "survey.md.j2", context, user_dir)
    return RenderedSurvey(
        text=text,
        cited=tuple(guarded.numbers),
        removed=guarded.removed,
        stray_numeric=guarded.stray_numeric,
    )


# --- the outline -----------------------------------------------------------------------------


def render_outline_md(outline: Outline, *, user_dir: Path | None = None) -> str:
    """Render the editable ``outline.md`` (read back by ``outline_md.parse_outline_md``)."""
    context = OutlineContext(
        title=one_line(outline.title),
        sections=[
            OutlineNodeView(
                id=node.id,
                title=one_line(node.title),
                level=level,
                description=tidy(node.description),
            )
            for node, level in outline.walk()
        ],
    )
    return render_template(make_env("md", user_dir), "outline.md.j2", context, user_dir)


# --- formatting helpers (also template filters) ----------------------------------------------


def one_line(text: str) -> str:
    """Collapse all whitespace, newlines included, to single spaces (titles from arXiv wrap)."""
    return " ".join(text.split())


def tidy(text: str) -> str:
    """Strip, and leave at most one blank line between blocks."""
    return re.sub(r"\n(?:[ \t]*\n)+", "\n\n", text.strip())


def end_sentence(text: object) -> str:
    """Append a period unless the text already ends a sentence (no "et al..")."""
    value = str(text).rstrip()
    return value if not value or value.endswith((".", "?", "!")) else value + "."


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_SPECIAL = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIALS))


def escape_latex(text: object) -> str:
    """Make paper-derived text safe inside LaTeX: every special character is escaped."""
    return _LATEX_SPECIAL.sub(lambda m: _LATEX_SPECIALS[m.group()], str(text))


_NAME_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"}


def format_name(name: str) -> str:
    """ "Ashish Vaswani" or "Vaswani, Ashish" -> "A. Vaswani"; "{OpenAI}" stays "OpenAI"."""
    name = one_line(name)
    if name.startswith("{") and name.endswith("}"):  # BibTeX's "take this name as it is"
        return name[1:-1].strip()
    name = name.replace("{", "").replace("}", "")
    if "," in name:  # BibTeX order: "Last, First" or "Last, Jr, First"
        parts = [part.strip() for part in name.split(",")]
        last, given = parts[0], parts[-1]
        suffix = parts[1] if len(parts) > 2 else ""
    else:
        words = name.split()
        suffix = words.pop() if len(words) > 1 and words[-1].lower() in _NAME_SUFFIXES else ""
        cut = len(words) - 1
        while cut > 1 and words[cut - 1][:1].islower():  # "van", "de", "von" go with the surname
            cut -= 1
        given, last = " ".join(words[:cut]), " ".join(words[cut:])
    initials = " ".join(filter(None, (_initials(word) for word in given.split())))
    return " ".join(filter(None, (initials, last, suffix)))


def _initials(word: str) -> str:
    if "." in word:  # already abbreviated: "A.", "J.R.R."
        return word
    letters = [next((c for c in part if c.isalnum()), "") for part in word.split("-")]
    return "-".join(f"{c}." for c in letters if c)


def format_authors(authors: Sequence[str], limit: int = 3) -> str:
    """Up to ``limit`` names ("A, B and C"); beyond that the first ``limit`` then "et al."."""
    names = [format_name(a) for a in authors if a.strip()]
    names = [n for n in names if n]
    if len(names) > limit:
        return ", ".join(names[:limit]) + " et al."
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _strip_prefix(value: str, prefixes: Iterable[str]) -> str:
    for prefix in prefixes:
        if value.lower().startswith(prefix):
            return value[len(prefix) :]
    return value


def reference_view(n: int, paper: Paper) -> ReferenceView:
    arxiv_id = _strip_prefix((paper.arxiv_id or "").strip(), ["arxiv:"])
    doi = _strip_prefix(
        (paper.doi or "").strip(),
        ["https://doi.org/", "http://doi.org/", "http://dx.doi.org/", "doi:"],
    )
    if paper.url:
        url = paper.url.strip()
    elif arxiv_id:
        url = f"https://arxiv.org/abs/{arxiv_id}"
    elif doi:
        url = f"https://doi.org/{doi}"
    else:
        url = ""
    venue = one_line(paper.venue or "")
    return ReferenceView(
        n=n,
        key=paper.key,
        authors=format_authors(paper.authors),
        title=one_line(paper.title.replace("{", "").replace("}", "")),
        venue_or_id=venue or (f"arXiv:{arxiv_id}" if arxiv_id else ""),
        year=paper.year,
        url=url,
    )


__all__ = [
    "GuardedSurvey",
    "OutlineContext",
    "OutlineNodeView",
    "ReferenceView",
    "RenderedSurvey",
    "SectionView",
    "SurveyContext",
    "TemplateKind",
    "end_sentence",
    "escape_latex",
    "format_authors",
    "format_name",
    "guard_survey",
    "make_env",
    "reference_view",
    "render_markdown",
    "render_outline_md",
    "render_template",
    "survey_context",
]
