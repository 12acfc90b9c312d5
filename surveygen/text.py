"""Plain-text helpers shared by the stages: sentences, matching, rough token counts.

Everything here is pure and deterministic: the same input always gives the same output, so
sentence indices stored in a run directory stay valid when a run is resumed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from rapidfuzz import fuzz

__all__ = [
    "approx_tokens",
    "ascii_fold",
    "best_sentence",
    "matched_span",
    "normalise",
    "quote_in",
    "split_sentences",
    "truncate_tokens",
]

# --------------------------------------------------------------------------------------------
# Sentences

# Tokens ending in "." after which a sentence does not end (compared lowercased, without any
# leading bracket or quote). "al." covers "et al.".
# fmt: off
_ABBREVIATIONS = frozenset({
    "e.g.", "i.e.", "al.", "fig.", "figs.", "eq.", "eqs.", "sec.", "secs.", "vs.", "cf.",
    "dr.", "no.", "nos.", "approx.", "mr.", "mrs.", "prof.", "st.", "jr.", "sr.",
    "resp.", "ref.", "refs.", "tab.", "ch.", "chap.", "pp.", "p.", "vol.", "ed.", "eds.",
    "ca.", "viz.", "inc.", "ltd.", "corp.", "dept.", "univ.", "alg.", "thm.",
    "def.", "lem.", "prop.", "cor.", "appx.", "op.", "cit.",
})
# fmt: on
# Initials ("J.", "A.B.", "U.S.") and runs of two or more lowercase letters with dots
# ("a.k.a."). A single lowercase letter ("... of x. Then") is a variable, not an initial.
_INITIALS = re.compile(r"^(?:[A-Z]\.)+$|^(?:[a-z]\.){2,}$")
# End punctuation, optional closing quotes/brackets, whitespace, then something that can open
# a sentence: a capital letter, a digit, a quote or an opening bracket.
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[0-9\w])")
_HYPHEN_BREAK = re.compile(r"(\w)-[ \t]*\r?\n[ \t]*(?=[a-z])")
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")
_MIN_SENTENCE = 3


def split_sentences(text: str) -> list[str]:
    """Split scientific prose into sentences.

    A sentence ends at ``.``, ``!`` or ``?`` (plus any closing quotes or brackets) followed by
    whitespace and a capital letter, digit, quote or opening bracket, and at blank lines. No
    split after common abbreviations (e.g., i.e., et al., Fig., Eq., Sec., vs., cf., ...),
    initials ("J. Smith"), inside decimals ("3.5") or URLs (no whitespace there). Words broken
    across lines with a hyphen are joined ("trans-\\nformer" -> "transformer"); whitespace is
    collapsed; fragments shorter than 3 characters are dropped.
    """
    if not text:
        return []
    text = _HYPHEN_BREAK.sub(r"\1", text)
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = " ".join(paragraph.split())
        start = 0
        for match in _BOUNDARY.finditer(paragraph):
            end = match.end()
            nxt = paragraph[end:].lstrip()[:1]
            if nxt.isalpha() and not nxt.isupper():
                continue  # "... 5 p.m. the next", lowercase continuation
            if match.group().startswith(".") and _is_abbreviation(paragraph, match.start()):
                continue
            _keep(sentences, paragraph[start:end])
            start = end
        _keep(sentences, paragraph[start:])
    return sentences


def _is_abbreviation(paragraph: str, dot: int) -> bool:
    """True when the token ending with the "." at ``dot`` is an abbreviation or an initial."""
    word_start = paragraph.rfind(" ", 0, dot) + 1
    token = paragraph[word_start : dot + 1].lstrip("\"'“‘([")
    return token.lower() in _ABBREVIATIONS or bool(_INITIALS.match(token))


def _keep(sentences: list[str], fragment: str) -> None:
    fragment = fragment.strip()
    if len(fragment) >= _MIN_SENTENCE:
        sentences.append(fragment)


# --------------------------------------------------------------------------------------------
# Matching

_QUOTES = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "′": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "″": '"',
        "«": '"',
        "»": '"',
        "‐": "-",
        "‑": "-",
        "‒": "-",
        "–": "-",
        "—": "-",
        "―": "-",
        "−": "-",
        "\u00ad": None,  # soft hyphen
    }
)
_MIN_FUZZY = 12


def normalise(text: str) -> str:
    """Text in the form used for matching: NFKC, casefolded, plain quotes and dashes,
    whitespace collapsed and stripped."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    return " ".join(text.split())


def _score(quote: str, haystack: str) -> float:
    """Similarity 0-100 of two normalised strings: 100 for a substring, else fuzzy."""
    if quote in haystack:
        return 100.0
    if len(quote) < _MIN_FUZZY:
        return 0.0
    if len(quote) > len(haystack):
        # partial_ratio would align the shorter haystack inside the quote instead.
        return float(fuzz.ratio(quote, haystack))
    return float(fuzz.partial_ratio(quote, haystack))


def quote_in(quote: str, haystack: str, threshold: float = 90.0) -> bool:
    """True if ``quote`` occurs in ``haystack``, up to normalisation and small differences.

    Exact (normalised) containment always counts; otherwise the best-aligned substring must
    reach ``threshold`` on ``rapidfuzz.fuzz.partial_ratio``. Quotes shorter than 12 normalised
    characters must match exactly: a fuzzy match of a few characters means nothing.
    """
    q = normalise(quote)
    if not q:
        return False
    return _score(q, normalise(haystack)) >= threshold


def best_sentence(quote: str, sentences: Sequence[str]) -> tuple[int, float]:
    """Index and score (0-100) of the sentence that best matches ``quote``.

    Returns ``(-1, 0.0)`` when there is no sentence, the quote is empty, or nothing matches at
    all. Ties go to the earliest sentence.
    """
    q = normalise(quote)
    best, best_score = -1, 0.0
    if not q:
        return best, best_score
    for index, sentence in enumerate(sentences):
        score = _score(q, normalise(sentence))
        if score > best_score:
            best, best_score = index, score
            if score >= 100.0:
                break
    return best, best_score


_PLAIN = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "−": "-"})


def _fold_chars(text: str) -> str:
    """Lowercase with plain quotes and dashes, character for character (so offsets into the
    folded text are offsets into the original)."""
    out = []
    for char in text.translate(_PLAIN):
        lower = char.lower()
        out.append(lower if len(lower) == 1 else char)
    return "".join(out)


def matched_span(quote: str, sentence: str) -> str:
    """The part of ``sentence`` that ``quote`` matches, as the sentence words it.

    Evidence is stored as the paper's own text, not the model's rendering of it (which may
    differ in case, quote marks, dashes or a word). The span is found exactly when it can be,
    else by ``rapidfuzz.fuzz.partial_ratio_alignment``, and widened to whole words. A quote
    as long as the sentence, or one that aligns nowhere, gives the whole sentence.
    """
    q, s = _fold_chars(" ".join(quote.split())), _fold_chars(sentence)
    if not q or len(q) >= len(s):
        return sentence
    start = s.find(q)
    if start >= 0:
        end = start + len(q)
    else:
        alignment = fuzz.partial_ratio_alignment(q, s)
        if alignment is None:
            return sentence
        start, end = alignment.dest_start, alignment.dest_end
    while start > 0 and sentence[start - 1].isalnum():
        start -= 1
    while end < len(sentence) and sentence[end].isalnum():
        end += 1
    return sentence[start:end].strip() or sentence


# --------------------------------------------------------------------------------------------
# Tokens

_CHARS_PER_TOKEN = 4


def approx_tokens(text: str) -> int:
    """A rough token count: about one token per 4 characters (English prose with BPE
    tokenizers), at least 1 for non-empty text. An estimate for budgeting and chunking, never
    an exact count; no tokenizer is downloaded."""
    if not text:
        return 0
    return max(1, -(-len(text) // _CHARS_PER_TOKEN))


_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*\s")


def truncate_tokens(text: str, max_tokens: int) -> str:
    """``text`` cut to about ``max_tokens`` (see :func:`approx_tokens`), at the last sentence
    end in the allowed span if there is one in its second half, else at the last space."""
    if approx_tokens(text) <= max_tokens:
        return text
    if max_tokens <= 0:
        return ""
    head = text[: max_tokens * _CHARS_PER_TOKEN]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= len(head) // 2:
        return head[: ends[-1]].rstrip()
    space = head.rfind(" ")
    if space > 0:
        return head[:space].rstrip()
    return head


# --------------------------------------------------------------------------------------------
# ASCII folding

_FOLD_EXTRA = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "TH",
        "ı": "i",
    }
)


def ascii_fold(text: str) -> str:
    """``text`` with accents removed and other non-ASCII characters dropped ("Müller" ->
    "Muller", "Søren" -> "Soren", "王" -> "")."""
    text = unicodedata.normalize("NFKD", text.translate(_FOLD_EXTRA))
    return text.encode("ascii", "ignore").decode("ascii")
