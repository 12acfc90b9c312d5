"""Sentences of generated Markdown, and whether the papers they cite back them up.

:func:`sentence_spans` finds the prose sentences of a section as spans of the original string,
so a sentence can be checked, rewritten or dropped without touching the bytes around it.
:class:`SupportChecker` then asks, for each cited key, whether the paper's evidence (verified
quotes, digest summaries, abstract, title: :func:`evidence_passages`) contains what the
sentence says. It is lexical and deterministic, and meant to catch a citation that points at
the wrong paper or a result the paper never reported, not to judge paraphrase:

* Both sides become content words: citation groups removed, casefolded, stopwords and survey
  framing words ("propose", "approach", "recent") dropped, light suffix stemming (so
  "retrievers", "retrieval" and "retrieve" meet), number words read as digits.
* Each word weighs its IDF over all the checker's passages (``ln((1+n)/(1+df)) + 1``), so
  topic words every paper shares count little and a paper's distinctive words count much.
* The score is the weighted share of the sentence's words found in the best single passage,
  or in the union of the key's passages times :data:`UNION_WEIGHT` (a survey sentence often
  merges several quotes, but words scattered over a whole abstract prove less than one
  passage holding them together). Supported means ``score >= threshold``.
* A number in the sentence ("12%", "3.5", "1,000", "4x"; not a year 1900-2099, not part of a
  name such as "GPT-4") that none of the key's passages holds, to within one unit of its
  last digit, makes the sentence unsupported whatever its score: invented results are the
  main hallucination this is meant to catch.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .citations import find_citations, guard_citations, markup_spans, replace_citations
from .models import Digest, Paper
from .text import _ABBREVIATIONS, _INITIALS, normalise, split_sentences

__all__ = [
    "DEFAULT_THRESHOLD",
    "UNION_WEIGHT",
    "Claim",
    "Passage",
    "SentenceSpan",
    "Support",
    "SupportChecker",
    "claims",
    "content_words",
    "drop_keys",
    "evidence_passages",
    "replace_span",
    "sentence_at",
    "sentence_spans",
    "unsupported_claims",
]

# Calibrated on the claim set of tests/test_support.py (28 sentences a reader would accept,
# 16 citing the wrong paper, 8 with invented numbers): accepted ones score 0.44 and up, wrong
# papers 0.39 and down, so 0.4 separates them all; 0.45 would reject one accepted sentence,
# 0.35 accept two wrong papers. A small hand-made set: recalibrate when the scoring changes.
DEFAULT_THRESHOLD = 0.4
UNION_WEIGHT = 0.8


# --------------------------------------------------------------------------------------------
# Passages


@dataclass(frozen=True)
class Passage:
    """A piece of a paper's evidence: ``kind`` is "quote", "summary", "abstract" or "title"."""

    key: str
    text: str
    kind: str


def evidence_passages(paper: Paper, digest: Digest | None) -> list[Passage]:
    """The paper's verified quotes (all nodes), its digest summaries, its abstract sentences and
    its title, each text once (up to case and final punctuation; the first kind wins)."""
    if digest is not None and digest.paper_key != paper.key:
        raise ValueError(f"digest of {digest.paper_key!r} given for paper {paper.key!r}")
    items: list[tuple[str, str]] = []
    nodes = digest.nodes if digest is not None else ()
    items += [(evidence.quote, "quote") for node in nodes for evidence in node.evidence]
    items += [(node.summary, "summary") for node in nodes]
    items += [(sentence, "abstract") for sentence in split_sentences(paper.abstract)]
    items.append((paper.title, "title"))
    seen: set[str] = set()
    passages: list[Passage] = []
    for text, kind in items:
        text = text.strip()
        folded = normalise(text).rstrip(" .!?;:,")
        if folded and folded not in seen:
            seen.add(folded)
            passages.append(Passage(paper.key, text, kind))
    return passages


# --------------------------------------------------------------------------------------------
# Sentence spans


@dataclass(frozen=True)
class SentenceSpan:
    """One sentence of a text: ``text == source[start:end]``."""

    start: int
    end: int
    text: str


_HEADING = re.compile(r"[ ]{0,3}#{1,6}(?:[ \t]|$)")
_RULE = re.compile(r"[ ]{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_SETEXT = re.compile(r"[ ]{0,3}(?:=+|-+)[ \t]*$")
_TABLE_DELIM = re.compile(r"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)+\|?[ \t]*$")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+]|(?P<num>\d{1,9})[.)])(?:[ \t]+|$)")
_QUOTE_MARK = re.compile(r"[ ]{0,3}>[ \t]?")
# End punctuation with any closing quotes, brackets or emphasis; CJK full stops need no space.
_END = re.compile(r"[.!?]+[\"'”’)\]*_]*|[。！？]+[」』”’）)]*")
_OPENER = re.compile(r"[\"'“‘(\[*_\w]")
_CJK_END = "。！？"
_HYPHENATED_INITIALS = re.compile(r"^[A-Z]\.(?:-[A-Z]\.)+$")  # "J.-B." (text.py lacks these)


def _mask(text: str) -> tuple[str, list[tuple[int, int]], dict[int, int]]:
    """``text`` with code, math, comments and links blanked to "0" and citation groups to
    "[00]" (newlines kept, offsets unchanged), so no "." inside them ends a sentence; also the
    fenced code blocks and the citation groups (start -> end)."""
    chars = list(text)
    fences: list[tuple[int, int]] = []
    cites: dict[int, int] = {}

    def blank(start: int, end: int) -> None:
        for i in range(start, end):
            if chars[i] != "\n":
                chars[i] = "0"

    for span in markup_spans(text):
        start, end = span.start, span.end
        if span.kind == "fence":
            fences.append((start, end))
        elif span.kind == "cite":
            cites[start] = end
            blank(start + 1, end - 1)
        elif span.kind not in ("numeric", "refdef"):
            blank(start, end)
    return "".join(chars), fences, cites


def _lines(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each line, the newline excluded."""
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        if end < 0:
            if start < len(text):
                yield start, len(text)
            return
        yield start, end
        start = end + 1


def _blocks(
    text: str, masked: str, fences: list[tuple[int, int]]
) -> tuple[list[tuple[int, int]], str]:
    """Prose blocks (paragraphs, list items, block quotes) as (start, end) ranges, and the
    masked text with block-quote markers inside a block blanked to spaces."""
    chars = list(masked)
    blocks: list[tuple[int, int]] = []
    lines: list[tuple[int, int]] = []  # the current block's lines: (content start, end)
    kind = ""  # of the current block: "para", "item" or "quote"
    table = False
    fence_index = 0

    def flush() -> None:
        nonlocal kind
        if lines:
            blocks.append((lines[0][0], lines[-1][1]))
        lines.clear()
        kind = ""

    for start, end in _lines(text):
        while fence_index < len(fences) and fences[fence_index][1] < start:
            fence_index += 1
        if fence_index < len(fences) and fences[fence_index][0] <= start:
            flush()
            continue
        line = masked[start:end]
        if not line.strip():
            flush()
            table = False
            continue
        if table and "|" in line:
            continue
        table = False
        if "|" in line and _TABLE_DELIM.match(line):
            if lines and "|" in masked[lines[-1][0] : lines[-1][1]]:
                lines.pop()  # the table's header row
            flush()
            table = True
            continue
        if line.lstrip().startswith("|"):
            flush()
            table = True
            continue
        if kind == "para" and _SETEXT.match(line):
            lines.clear()  # the paragraph was a setext heading
            flush()
            continue
        if _HEADING.match(line) or _RULE.match(line):
            flush()
            continue
        quote = _QUOTE_MARK.match(line)
        if quote:
            for i in range(start, start + quote.end()):
                chars[i] = " "
            if kind != "quote":
                flush()
                kind = "quote"
            start += quote.end()
            line = masked[start:end]
            if not line.strip():
                continue
            lines.append((start, end))
            continue
        item = _LIST_ITEM.match(line)
        if item and not (kind == "para" and item.group("num") not in (None, "1")):
            # (an ordered marker other than "1." does not interrupt a paragraph: a wrapped
            # line starting "2020. The" is not a list item)
            flush()
            kind = "item"
            content = start + item.end()
            if content < end:
                lines.append((content, end))
            continue
        if not lines:
            kind = kind or "para"
            start += len(line) - len(line.lstrip())
        lines.append((start, end))
    flush()
    return blocks, "".join(chars)


def _is_abbreviation(block: str, dot: int) -> bool:
    """True when the word ending with the "." at ``dot`` is an abbreviation or an initial."""
    token = block[block.rfind(" ", 0, dot) + 1 : dot + 1].lstrip("\"'“‘([*_")
    return (
        token.lower() in _ABBREVIATIONS
        or bool(_INITIALS.match(token))
        or bool(_HYPHENATED_INITIALS.match(token))
    )


def _split_block(block: str, offset: int, cites: dict[int, int]) -> Iterator[tuple[int, int]]:
    """Sentence (start, end) ranges of one prose block (masked, whitespace as spaces)."""
    start = 0
    for match in _END.finditer(block):
        end = match.end()
        # a citation group right after the end punctuation belongs to this sentence
        cursor = end
        while True:
            nxt = len(block) - len(block[cursor:].lstrip(" "))
            if offset + nxt not in cites:
                break
            cursor = end = cites[offset + nxt] - offset
        cjk = match.group()[0] in _CJK_END
        after = block[end:]
        following = after.lstrip(" ")
        if not following:
            break
        if not cjk and (end == match.end() and not block[end : end + 1].isspace()):
            continue  # "3.5", "e.g.,", a URL: no space after the stop
        if not cjk and (len(after) == len(following) or not _OPENER.match(following)):
            continue
        if following[0].islower():
            continue  # "... 5 p.m. the next": a lowercase continuation
        if match.group()[0] == "." and _is_abbreviation(block, match.start()):
            continue
        yield start, end
        start = end
    yield start, len(block)


def sentence_spans(text: str) -> list[SentenceSpan]:
    """The prose sentences of a Markdown text, as spans of the original string.

    Headings, fenced code, tables and rules are not prose; list markers and block-quote
    markers are not part of a sentence; no sentence crosses a blank line or a list item. The
    no-split rules are those of :func:`surveygen.text.split_sentences` (abbreviations, "et
    al.", initials, decimals); dots inside code, math, links and citation groups never end a
    sentence. A citation group just after the end punctuation ("shown. [@a]") belongs to the
    sentence before it. Fragments with no letter at all (a lone "[@a]") are dropped.
    """
    masked, fences, cites = _mask(text)
    blocks, masked = _blocks(text, masked, fences)
    spans: list[SentenceSpan] = []
    for block_start, block_end in blocks:
        block = "".join(" " if c.isspace() else c for c in masked[block_start:block_end])
        for start, end in _split_block(block, block_start, cites):
            piece = block[start:end]
            start += len(piece) - len(piece.lstrip())
            end -= len(piece) - len(piece.rstrip())
            if end - start < 3 or not any(c.isalpha() for c in block[start:end]):
                continue
            start, end = block_start + start, block_start + end
            spans.append(SentenceSpan(start, end, text[start:end]))
    return spans


def sentence_at(text: str, offset: int) -> SentenceSpan | None:
    """The sentence whose span contains ``offset`` (start inclusive, end exclusive)."""
    return next((s for s in sentence_spans(text) if s.start <= offset < s.end), None)


def replace_span(text: str, span: SentenceSpan, new: str) -> str:
    """``text`` with the sentence ``span`` replaced by ``new``; a stale span raises."""
    if text[span.start : span.end] != span.text:
        raise ValueError(f"span {span.start}:{span.end} no longer holds {span.text!r}")
    return text[: span.start] + new + text[span.end :]


# --------------------------------------------------------------------------------------------
# Claims


@dataclass(frozen=True)
class Claim:
    """A sentence that cites: its span, its distinct keys and its text without citations."""

    sentence: SentenceSpan
    keys: tuple[str, ...]
    plain: str


def plain_text(text: str) -> str:
    """``text`` without its citation groups, whitespace collapsed."""
    return " ".join(guard_citations(text, ()).text.split())


def claims(text: str) -> list[Claim]:
    """The sentences of ``text`` that cite at least one key, in order."""
    found: list[Claim] = []
    for span in sentence_spans(text):
        keys = tuple(dict.fromkeys(find_citations(span.text)))
        if keys:
            found.append(Claim(span, keys, plain_text(span.text)))
    return found


def drop_keys(text: str, span: SentenceSpan, keys: Collection[str]) -> str:
    """``text`` with ``keys`` removed from the citation groups inside ``span`` only, tidied the
    way :func:`surveygen.citations.guard_citations` tidies; everything else byte for byte."""
    piece = text[span.start : span.end]
    if piece != span.text:
        raise ValueError(f"span {span.start}:{span.end} no longer holds {span.text!r}")
    cited = find_citations(piece)
    drop = set(keys)
    if not drop.intersection(cited):
        return text
    guarded = guard_citations(piece, [key for key in cited if key not in drop]).text
    return text[: span.start] + guarded + text[span.end :]


# --------------------------------------------------------------------------------------------
# Content words


def _words(text: str) -> tuple[str, ...]:
    """The words of a word-list literal (easier to read and edit than a list of strings)."""
    return tuple(text.split())


_STOPWORDS = frozenset(
    _words("""
    a about above across after again against all almost along already also although always am
    among an and another any are around as at be became because become becomes been before
    being below between beyond both but by can cannot could did do does doing done down due
    during each either else enough etc even ever every few for from further had has have having
    he her here hers herself him himself his how however i if in into is it its itself just
    least less many may me might more most much must my myself neither never no nor not now of
    off often on once one only onto or other others otherwise our ours ourselves out over own
    per perhaps quite rather same she should since so some such than that the their theirs them
    themselves then there thereby therefore these they this those though through throughout
    thus to too toward towards under until up upon us very via was we well were what whatever
    when where whereas whether which while who whom whose why will with within without would
    yet you your yours
""")
)
# Words a survey uses to frame a claim; the cited paper need not contain them.
_FRAMING = frozenset(
    _words("""
    additionally address addresses al approach approaches argue argues author authors based
    contrast demonstrate demonstrates demonstrated e.g et example examples existing explore
    explores explored field find finds found further furthermore highlight highlights i.e
    include includes including instance introduce introduces introduced investigate
    investigates investigated key leverage leverages leveraging line literature main method
    methods moreover new notably note noted novel paper papers particular particularly present
    presents presented previous prior propose proposes proposed recent recently report reports
    reported research researchers see several show showed shown shows similarly specifically
    studies study survey use used uses using various work works
""")
)
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        _words("""
            zero one two three four five six seven eight nine ten eleven twelve thirteen
            fourteen fifteen sixteen seventeen eighteen nineteen twenty
        """)
    )
}
_NUMBER_WORDS.update(
    zip(
        _words("thirty forty fifty sixty seventy eighty ninety"),
        map(str, range(30, 100, 10)),
        strict=True,
    )
)
# Suffixes the stemmer removes: inflections once, then up to two derivations.
_INFLECTIONS = ("ings", "ing", "ies", "ed", "ly", "s")
_DERIVATIONS = sorted(
    _words("""
        ization izer ize ation ator ative ate ion ment ness ity ive al ence ency ent ance able
        ably er or
    """),
    key=len,
    reverse=True,
)
_WORD = re.compile(r"\d+(?:[.,]\d+)*(?![^\W_])|[^\W_]+")


def _consonants(text: str) -> bool:
    return not any(c in "aeiouy" for c in text)


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    """A light suffix stemmer, so inflections and derivations of a word meet: "retrievers",
    "retrieval" and "retrieve" give "retriev"; "generated" and "generation" give "gener"."""
    if not word.isalpha() or len(word) <= 3:
        return word
    for suffix in _INFLECTIONS:
        stem = word[: -len(suffix)]
        if not word.endswith(suffix) or len(stem) < 3:
            continue
        if suffix == "s" and stem[-1] in "siu":
            break  # "loss", "corpus", "analysis"
        if suffix == "ed" and (stem[-1] == "e" or (len(stem) == 3 and _consonants(stem[-2:]))):
            break  # "need", "speed", "embed"
        if suffix == "ies":
            stem += "y"
        elif suffix in ("ing", "ings", "ed"):
            if stem[-1] == stem[-2] and stem[-1] not in "aeiouylsz":
                stem = stem[:-1]  # "embedding" -> "embed"
            elif stem.endswith(("at", "bl", "iz")):
                stem += "e"  # "generated" -> "generate"
        word = stem
        break
    for _ in range(2):
        suffix = next(
            (s for s in _DERIVATIONS if word.endswith(s) and len(word) - len(s) >= 4), None
        )
        if suffix is None:
            break
        word = word[: -len(suffix)]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def _canonical_number(raw: str) -> str:
    """ "1,000" -> "1000", "12.50" -> "12.5", "007" -> "7"."""
    number = _decimal(raw)
    return raw if number is None else f"{number.normalize():f}"


def _tokens(text: str) -> Iterator[str]:
    """Casefolded words and canonical numbers of ``text``, citation groups removed."""
    text = normalise(replace_citations(text, lambda keys: " "))
    for match in _WORD.finditer(text):
        word = match.group()
        if word[0].isdigit() and all(c.isdigit() or c in ".," for c in word):
            yield _canonical_number(word)
        elif word in _NUMBER_WORDS and word != "one":
            yield _NUMBER_WORDS[word]
        elif len(word) > 1 and word not in _STOPWORDS:
            yield _stem(word)


_FRAMING_STEMS = frozenset(_stem(word) for word in _FRAMING)


def content_words(text: str, drop_framing: bool = False) -> list[str]:
    """The stemmed content words of ``text`` in order: citation groups and stopwords removed
    (and survey framing words such as "propose" if ``drop_framing``), numbers canonical."""
    words = list(_tokens(text))
    return [w for w in words if w not in _FRAMING_STEMS] if drop_framing else words


# --------------------------------------------------------------------------------------------
# Numbers

# A number as a claim states it: not inside a word or name ("BM25", "GPT-4", "F1", "3D").
_CLAIM_NUMBER = re.compile(
    r"(?<![\w.,])(?<![^\W\d_]-)(?P<value>\d{1,3}(?:,\d{3})+|\d+)(?P<decimals>\.\d+)?"
    r"(?P<unit>[ \t]?%|[x×]|[BMK])?(?![^\W_])"
)
_NUMBER_WORD = re.compile(r"\b(?:" + "|".join(_NUMBER_WORDS) + r")\b")


def _claim_numbers(text: str) -> list[tuple[str, Decimal, int]]:
    """(as written, value, decimals) of each number the sentence states, years excluded."""
    text = replace_citations(text, lambda keys: " ")
    found = []
    for match in _CLAIM_NUMBER.finditer(text):
        value, decimals = match.group("value"), match.group("decimals") or ""
        year = not decimals and not match.group("unit") and "," not in value
        if year and 1900 <= int(value) <= 2099:
            continue
        number = _decimal(value + decimals)
        if number is not None:
            found.append((match.group().strip(), number, max(len(decimals) - 1, 0)))
    return found


def _decimal(raw: str) -> Decimal | None:
    try:
        return Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None


def _passage_numbers(text: str) -> set[Decimal]:
    """The numbers a passage states, years included, also those spelled as words ("three");
    not those inside names ("BM25" does not report a 25)."""
    numbers = {
        _decimal(m.group("value") + (m.group("decimals") or ""))
        for m in _CLAIM_NUMBER.finditer(text)
    }
    numbers |= {Decimal(_NUMBER_WORDS[w]) for w in _NUMBER_WORD.findall(text.casefold())}
    return {n for n in numbers if n is not None}


def _number_found(value: Decimal, decimals: int, numbers: Collection[Decimal]) -> bool:
    """True if some passage number is within one unit of the claim's last digit (so "12%"
    matches a reported 12.3 or 11.8: rounding and truncation are fine, 14 is not)."""
    unit = Decimal(1).scaleb(-decimals)
    return any(abs(number - value) < unit for number in numbers)


# --------------------------------------------------------------------------------------------
# Support


@dataclass(frozen=True)
class Support:
    """The verdict on one (sentence, key) pair, with the passage that matched best."""

    key: str
    score: float
    supported: bool
    passage: Passage | None
    reason: str


_OWN_WORDS = ("quote", "abstract", "title")


class SupportChecker:
    """Scores sentences against the passages of the keys they cite (see the module doc)."""

    def __init__(
        self, passages: Mapping[str, Sequence[Passage]], threshold: float = DEFAULT_THRESHOLD
    ) -> None:
        self.threshold = threshold
        self._passages = {key: tuple(items) for key, items in passages.items()}
        self._words: dict[str, list[frozenset[str]]] = {}
        self._union: dict[str, frozenset[str]] = {}
        self._numbers: dict[str, frozenset[Decimal]] = {}
        frequency: Counter[str] = Counter()
        for key, items in self._passages.items():
            words = [frozenset(content_words(p.text)) for p in items]
            self._words[key] = words
            self._union[key] = frozenset().union(*words)
            self._numbers[key] = frozenset().union(*(_passage_numbers(p.text) for p in items))
            for word_set in words:
                frequency.update(word_set)
        total = sum(len(items) for items in self._passages.values())
        self._idf = {w: math.log((1 + total) / (1 + df)) + 1 for w, df in frequency.items()}
        self._unseen = math.log(1 + total) + 1

    def _weights(self, sentence: str) -> dict[str, float]:
        words = dict.fromkeys(content_words(sentence, drop_framing=True))
        return {word: self._idf.get(word, self._unseen) for word in words}

    def _scores(self, weights: dict[str, float], key: str) -> list[float]:
        total = sum(weights.values())
        if not total:
            return [1.0] * len(self._words.get(key, ()))
        return [
            sum(weight for word, weight in weights.items() if word in passage) / total
            for passage in self._words.get(key, ())
        ]

    def check(self, sentence: str, key: str) -> Support:
        """Whether the passages of ``key`` support ``sentence`` (citation groups ignored)."""
        passages = self._passages.get(key, ())
        if not passages:
            return Support(key, 0.0, False, None, "no evidence for this paper")
        weights = self._weights(sentence)
        scores = self._scores(weights, key)
        best = max(range(len(scores)), key=scores.__getitem__)
        union = self._union[key]
        total = sum(weights.values())
        union_score = (
            UNION_WEIGHT * sum(w for word, w in weights.items() if word in union) / total
            if total
            else 1.0
        )
        if scores[best] >= union_score:
            score = scores[best]
            found = sum(word in self._words[key][best] for word in weights)
            where = "in one passage"
        else:
            score = union_score
            found = sum(word in union for word in weights)
            where = "across the paper's evidence"
        score = round(min(score, 1.0), 4)
        missing = [
            written
            for written, value, decimals in _claim_numbers(sentence)
            if not _number_found(value, decimals, self._numbers[key])
        ]
        if missing:
            noun = "number" if len(missing) == 1 else "numbers"
            reason = f"{noun} {', '.join(missing)} not in the paper's evidence"
            return Support(key, score, False, passages[best], reason)
        reason = (
            f"{found}/{len(weights)} content words found {where}"
            if weights
            else "no content words to check"
        )
        return Support(key, score, score >= self.threshold, passages[best], reason)

    def best_quote(self, sentence: str, key: str) -> str | None:
        """The passage in the paper's own words (quote, abstract or title, never a summary)
        closest to ``sentence``: the title when nothing matches, None when there is none."""
        own = [
            (index, passage)
            for index, passage in enumerate(self._passages.get(key, ()))
            if passage.kind in _OWN_WORDS
        ]
        if not own:
            return None
        scores = self._scores(self._weights(sentence), key)
        index, passage = max(own, key=lambda item: scores[item[0]])
        if scores[index] <= 0:
            return next((p.text for _, p in own if p.kind == "title"), own[0][1].text)
        return passage.text


def unsupported_claims(text: str, checker: SupportChecker) -> list[tuple[Claim, tuple[str, ...]]]:
    """Each claim of ``text`` with at least one unsupported key, and those keys in order."""
    found = []
    for claim in claims(text):
        bad = tuple(key for key in claim.keys if not checker.check(claim.plain, key).supported)
        if bad:
            found.append((claim, bad))
    return found
