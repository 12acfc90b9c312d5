"""Citation keys: BibTeX-style (``vaswani2017attention``), valid for our citation parser, and
stable across runs.

A key the user gave (a BibTeX entry key, a papers.jsonl ``key``) is kept when valid and free.
Otherwise a key used for the same paper in an earlier run of the same run directory is kept,
so that state saved under it (digests, sections) stays valid. Only then is a new key made, in
an order that does not depend on the order of the inputs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from surveygen import citations
from surveygen.text import ascii_fold

__all__ = ["KEY_PATTERN", "is_valid_key", "make_key"]

# A given key is kept only if the citation parser reads it back whole (one pattern for both).
KEY_PATTERN = re.compile(rf"{citations.KEY_PATTERN}\Z")  # \Z: no trailing newline either
# fmt: off
_STOPWORDS = frozenset({
    "a", "an", "the", "on", "of", "for", "in", "to", "towards", "toward", "with", "and", "via",
    "from", "by", "is", "are", "using", "beyond", "at", "as", "into", "onto", "or", "not",
    "be", "do", "does", "its", "it", "we", "our", "your", "this", "that", "these", "those",
    "under", "over", "about",
})
# fmt: on
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "v"})


def _family_name(author: str) -> str:
    """Letters-only, lowercase ASCII form of the last token of an author's family name.

    Handles "Last, First" ("van der Berg, Jan" -> "berg") and "First Last" ("Jan van der
    Berg" -> "berg"), ignoring name suffixes such as "Jr." or "III".
    """
    family = author.split(",", 1)[0] if "," in author else author
    tokens = [re.sub(r"[^a-z]", "", ascii_fold(t).lower()) for t in family.split()]
    tokens = [t for t in tokens if t]
    while len(tokens) > 1 and tokens[-1] in _NAME_SUFFIXES:
        tokens.pop()
    return tokens[-1] if tokens else ""


def _title_word(title: str) -> str:
    for word in re.split(r"[^a-z0-9]+", ascii_fold(title).lower()):
        if word and word not in _STOPWORDS:
            return word
    return ""


def _suffix(n: int) -> str:
    """1 -> "a", 26 -> "z", 27 -> "aa", ... (bijective base 26)."""
    letters = ""
    while n > 0:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return letters


def make_key(
    authors: Sequence[str], year: int | None, title: str, taken: set[str] | frozenset[str]
) -> str:
    """A BibTeX-style key such as ``vaswani2017attention`` that is not in ``taken``.

    First author's family name (ASCII-folded, letters only; "anon" without one), the year
    ("nd" without one) and the first title word that is not a stopword. Clashes get a
    suffix: ``smith2020deep``, ``smith2020deepa``, ``smith2020deepb``, ... ``taken`` is not
    modified; generated keys are lowercase, so pass lowercased keys for a case-insensitive
    check (BibTeX compares keys without case).
    """
    name = next((n for a in authors if a.strip() for n in [_family_name(a)]), "")
    # Name and title word are cut so the key, with a clash suffix, stays a key the citation
    # parser reads (MAX_KEY_CHARS); real names and words are far shorter.
    base = f"{(name or 'anon')[:40]}{year if year is not None else 'nd'}{_title_word(title)[:40]}"
    key, n = base, 0
    while key in taken:
        n += 1
        key = base + _suffix(n)
    return key


def is_valid_key(key: str) -> bool:
    """Whether the citation parser reads ``[@key]`` back whole."""
    return bool(KEY_PATTERN.match(key))
