"""References for every output format: names, author-year labels, reference entries, links.

Plain text only: each renderer escapes these strings for its own format.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypedDict

from surveygen.latex import normalise_url
from surveygen.models import Paper
from surveygen.text import ascii_fold

__all__ = [
    "AuthorYear",
    "ReferenceView",
    "author_year_labels",
    "format_authors",
    "format_name",
    "inverted_authors",
    "is_web_url",
    "one_line",
    "paper_arxiv_id",
    "paper_doi",
    "paper_url",
    "reference_sort_key",
    "reference_view",
    "short_title",
    "surname",
]


def one_line(text: str) -> str:
    """Collapse all whitespace, newlines included, to single spaces (titles from arXiv wrap)."""
    return " ".join(text.split())


def end_sentence(text: object) -> str:
    """Append a period unless the text already ends a sentence (no "et al..")."""
    value = str(text).rstrip()
    return value if not value or value.endswith((".", "?", "!")) else value + "."


# --- names -----------------------------------------------------------------------------------

_NAME_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"}


@dataclass(frozen=True)
class _Name:
    given: str
    last: str
    suffix: str = ""


def _split_name(name: str) -> _Name:
    """ "Ashish Vaswani" / "Vaswani, Ashish" / "{OpenAI}" into given names, surname, suffix."""
    name = one_line(name)
    if name.startswith("{") and name.endswith("}"):  # BibTeX's "take this name as it is"
        return _Name("", name[1:-1].strip())
    name = name.replace("{", "").replace("}", "")
    if "," in name:  # BibTeX order: "Last, First" or "Last, Jr, First"
        parts = [part.strip() for part in name.split(",")]
        last, given = parts[0], parts[-1]
        return _Name(given, last, parts[1] if len(parts) > 2 else "")
    words = name.split()
    suffix = words.pop() if len(words) > 1 and words[-1].lower() in _NAME_SUFFIXES else ""
    cut = len(words) - 1
    while cut > 1 and words[cut - 1][:1].islower():  # "van", "de", "von" go with the surname
        cut -= 1
    return _Name(" ".join(words[:cut]), " ".join(words[cut:]), suffix)


def _initials(given: str) -> str:
    def one(word: str) -> str:
        if "." in word:  # already abbreviated: "A.", "J.R.R."
            return word
        letters = [next((c for c in part if c.isalnum()), "") for part in word.split("-")]
        return "-".join(f"{c}." for c in letters if c)

    return " ".join(filter(None, (one(word) for word in given.split())))


def format_name(name: str) -> str:
    """ "Ashish Vaswani" or "Vaswani, Ashish" -> "A. Vaswani"; "{OpenAI}" stays "OpenAI"."""
    parts = _split_name(name)
    return " ".join(filter(None, (_initials(parts.given), parts.last, parts.suffix)))


def _inverted_name(name: str) -> str:
    """ "Ashish Vaswani" -> "Vaswani, A."; "{OpenAI}" -> "OpenAI"."""
    parts = _split_name(name)
    last = " ".join(filter(None, (parts.last, parts.suffix)))
    initials = _initials(parts.given)
    return f"{last}, {initials}" if initials and last else last or initials


def surname(name: str) -> str:
    """The surname as an author-year label shows it: "van Beethoven", "OpenAI"."""
    return _split_name(name).last


def _join_names(names: list[str], limit: int) -> str:
    if len(names) > limit:
        return ", ".join(names[:limit]) + " et al."
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _names(authors: Iterable[str], form: Callable[[str], str]) -> list[str]:
    formatted = [form(a) for a in authors if a.strip()]
    return [n for n in formatted if n]


def format_authors(authors: Sequence[str], limit: int = 3) -> str:
    """Up to ``limit`` names ("A, B and C"); beyond that the first ``limit`` then "et al."."""
    return _join_names(_names(authors, format_name), limit)


def inverted_authors(authors: Sequence[str], limit: int = 3) -> str:
    """Like :func:`format_authors`, surname first: "Lewis, P., Perez, E. and Oguz, B."."""
    return _join_names(_names(authors, _inverted_name), limit)


def short_title(title: str) -> str:
    """What an author-year label shows for a paper without authors: the title up to its
    colon, at most four words ("REALM: Retrieval-Augmented ..." -> "REALM")."""
    text = one_line(title.replace("{", "").replace("}", ""))
    head = text.split(":", 1)[0].strip() or text
    words = head.split()
    return " ".join(words[:4]) + ("…" if len(words) > 4 else "")


# --- author-year labels ----------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorYear:
    """An author-year label: ``names`` "Lewis et al.", ``year`` "2020", "2020a" or "n.d."."""

    names: str
    year: str

    @property
    def parenthetical(self) -> str:
        """ "Lewis et al., 2020": one item of "(A, 2020; B, 2021)"."""
        return f"{self.names}, {self.year}"

    @property
    def textual(self) -> str:
        """ "Lewis et al. (2020)": the paper named in running text or a table cell."""
        return f"{self.names} ({self.year})"


def _label_names(paper: Paper) -> str:
    surnames = [s for s in (surname(a) for a in paper.authors if a.strip()) if s]
    if not surnames:
        return short_title(paper.title)
    if len(surnames) == 1:
        return surnames[0]
    if len(surnames) == 2:
        return f"{surnames[0]} and {surnames[1]}"
    return f"{surnames[0]} et al."


def _fold(text: str) -> tuple[str, str]:
    return ascii_fold(text).casefold(), text.casefold()


def reference_sort_key(paper: Paper) -> tuple[object, ...]:
    """Author-year reference order: first author's surname, year (undated last), then as
    natbib's plainnat breaks ties -- all authors, then the key -- and last the title, so the
    letters of 2020a/2020b match the PDF's."""
    names = [_split_name(a) for a in paper.authors if a.strip()]
    first = next((name.last for name in names if name.last), "") or short_title(paper.title)
    everyone = "   ".join(f"{name.last}  {name.given}  {name.suffix}" for name in names)
    year = paper.year if paper.year is not None else 10**6
    return (_fold(first), year, _fold(everyone), paper.key, _fold(one_line(paper.title)))


def _suffix(n: int) -> str:
    """0 -> "a", 25 -> "z", 26 -> "aa" (bijective base 26)."""
    letters = ""
    n += 1
    while n > 0:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return letters


def author_year_labels(papers: Iterable[Paper]) -> dict[str, AuthorYear]:
    """Labels for ``papers``; two papers sharing one are told apart as 2020a, 2020b (and
    n.d.-a, n.d.-b), lettered in reference-list order."""
    ordered = sorted({p.key: p for p in papers}.values(), key=reference_sort_key)
    groups: dict[tuple[str, str], list[Paper]] = {}
    for paper in ordered:
        year = str(paper.year) if paper.year is not None else "n.d."
        groups.setdefault((_label_names(paper), year), []).append(paper)
    labels: dict[str, AuthorYear] = {}
    for (names, year), members in groups.items():
        for i, paper in enumerate(members):
            if len(members) == 1:
                labels[paper.key] = AuthorYear(names, year)
            else:
                sep = "-" if paper.year is None else ""
                labels[paper.key] = AuthorYear(names, f"{year}{sep}{_suffix(i)}")
    return labels


# --- reference entries -----------------------------------------------------------------------


class ReferenceView(TypedDict):
    n: int  # citation number: order of first use
    key: str
    label: str  # author-year label, "Lewis et al., 2020a"
    authors: str  # up to three names, then "et al.": "P. Lewis and E. Perez"
    authors_inverted: str  # the same, surname first: "Lewis, P. and Perez, E."
    title: str
    venue_or_id: str  # venue, else "arXiv:ID", else ""
    year: int | None
    year_label: str  # "2020", "2020a" or "n.d."
    url: str  # http(s) url, else the arXiv abstract page, else the DOI resolver, else ""
    entry: str  # the whole entry as plain text in the survey's style, without the url


def _strip_prefix(value: str, prefixes: Iterable[str]) -> str:
    for prefix in prefixes:
        if value.lower().startswith(prefix):
            return value[len(prefix) :]
    return value


def paper_arxiv_id(paper: Paper) -> str:
    return _strip_prefix((paper.arxiv_id or "").strip(), ["arxiv:"])


def paper_doi(paper: Paper) -> str:
    return _strip_prefix(
        (paper.doi or "").strip(),
        [
            "https://doi.org/",
            "http://doi.org/",
            "https://dx.doi.org/",
            "http://dx.doi.org/",
            "doi:",
        ],
    )


def paper_url(paper: Paper) -> str:
    """The paper's url, else its arXiv abstract page, else the DOI resolver, else ""."""
    arxiv_id = paper_arxiv_id(paper)
    if paper.url and paper.url.strip():
        return paper.url.strip()
    if arxiv_id:
        return f"https://arxiv.org/abs/{arxiv_id}"
    doi = paper_doi(paper)
    return f"https://doi.org/{doi}" if doi else ""


_WEB_URL = re.compile(r"^https?://[^\s/?#]+", re.IGNORECASE)


def is_web_url(url: str) -> bool:
    """Whether ``url`` is an http(s) URL: the only kind any output links to."""
    return bool(_WEB_URL.match(url.strip()))


def reference_view(n: int, paper: Paper, label: AuthorYear, *, author_year: bool) -> ReferenceView:
    """One reference: the numeric style's "[n] A. B and C. D. Title. Venue, 2020." or the
    author-year style's "B, A. and D, C. (2020a). Title. Venue." (``entry``, without "[n]")."""
    arxiv_id = paper_arxiv_id(paper)
    venue = one_line(paper.venue or "")
    venue_or_id = venue or (f"arXiv:{arxiv_id}" if arxiv_id else "")
    title = one_line(paper.title.replace("{", "").replace("}", ""))
    authors = format_authors(paper.authors)
    inverted = inverted_authors(paper.authors)
    url = normalise_url(paper_url(paper))
    if author_year:
        head = f"{inverted or title} ({label.year})"
        parts = [head, title if inverted else "", venue_or_id]
    else:
        where = ", ".join(filter(None, [venue_or_id, str(paper.year or "")]))
        parts = [authors, title, where]
    return ReferenceView(
        n=n,
        key=paper.key,
        label=label.parenthetical,
        authors=authors,
        authors_inverted=inverted,
        title=title,
        venue_or_id=venue_or_id,
        year=paper.year,
        year_label=label.year,
        url=url if is_web_url(url) else "",
        entry=" ".join(end_sentence(part) for part in parts if part),
    )
