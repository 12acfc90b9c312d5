"""Text that pdflatex typesets as written: escaping, Unicode it can print, URLs hyperref keeps.

Every string that reaches a ``.tex`` or ``.bib`` file from a paper or from the model goes
through :func:`escape_latex` (or :func:`latex_url` / :func:`bib_url` for a URL), so no text can
run a command, open a group or start a comment.

Unicode, for pdflatex with ``[utf8]{inputenc}``, ``[T1]{fontenc}`` and ``lmodern`` (see
``templates/survey.tex.j2``): pdflatex stops with "Unicode character ... not set up" on a
character it has no definition for, so each character is handled in this order:

1. ASCII: LaTeX's specials are escaped; ``[``/``]`` are braced so text after ``\\item`` or
   ``\\\\`` is never read as an optional argument; control characters are dropped.
2. Characters LaTeX defines for T1/TS1 (Latin-1, most of Latin Extended-A, typographic quotes,
   dashes, bullets, euro, arrows...) stay as they are, so the source stays readable.
3. Greek letters and common mathematical symbols become ``\\ensuremath{...}``; a few others
   (non-breaking and odd spaces, soft hyphens, zero-width characters) get their text form.
4. Letters with accents LaTeX can build (Vietnamese, pinyin, ...) become accent commands such
   as ``{\\v{a}}``; compatibility forms (ligatures, full-width and super/subscript forms)
   become their plain equivalent.
5. Anything else -- CJK, emoji, other scripts, rare symbols -- becomes ``?``, so the document
   always compiles. The Markdown and HTML outputs keep the original text.

``tests/test_render_tex.py`` compiles every character of steps 2-4 to keep this table honest.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

__all__ = [
    "NATIVE",
    "REPLACEMENT",
    "bib_url",
    "escape_latex",
    "latex_char",
    "latex_url",
    "normalise_url",
]

# What an unsupported character becomes (one per character, as ``errors="replace"`` does).
REPLACEMENT = "?"

_ASCII_SPECIALS = {
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
    "[": "{[}",
    "]": "{]}",
}
# BibTeX counts braces without looking at backslashes, so "\{" would unbalance a field.
_BIB_BRACES = {"{": r"{\textbraceleft}", "}": r"{\textbraceright}"}


def _ranges(*spans: tuple[int, int]) -> frozenset[str]:
    return frozenset(chr(c) for first, last in spans for c in range(first, last + 1))


# Characters LaTeX's utf8 input encoding defines for T1/TS1 and lmodern has glyphs for, in
# every shape the survey uses (checked by compiling them, in the typewriter font too).
NATIVE: frozenset[str] = _ranges(
    (0x00A1, 0x00AC),
    (0x00AE, 0x00FF),  # Latin-1 (the soft hyphen U+00AD is mapped below)
    (0x0100, 0x0125),
    (0x0128, 0x0137),
    (0x0139, 0x013E),
    (0x0141, 0x0148),
    (0x014A, 0x0165),
    (0x0168, 0x017E),  # Latin Extended-A, less Ħ ħ ĸ Ŀ ŀ ŉ Ŧ ŧ ſ
    (0x0218, 0x021B),  # Romanian Ș ș Ț ț
    (0x2013, 0x2014),
    (0x2018, 0x201A),
    (0x201C, 0x201E),
    (0x2020, 0x2022),
    (0x2190, 0x2193),
) | frozenset("…‰‹›€™№℃⟨⟩")

# Greek and mathematics: typeset in math mode from text.
# fmt: off
_GREEK = [  # U+03B1-U+03C9 in order; omicron looks like "o" and has no command
    "alpha", "beta", "gamma", "delta", "varepsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "varsigma", "sigma", "tau", "upsilon",
    "varphi", "chi", "psi", "omega",
]
# fmt: on
_MATH = {
    **{chr(0x03B1 + i): f"\\{name}" for i, name in enumerate(_GREEK) if name != "omicron"},
    "ϵ": r"\epsilon",
    "ϑ": r"\vartheta",
    "ϕ": r"\phi",
    "ϖ": r"\varpi",
    "ϱ": r"\varrho",
    "Γ": r"\Gamma",
    "Δ": r"\Delta",
    "Θ": r"\Theta",
    "Λ": r"\Lambda",
    "Ξ": r"\Xi",
    "Π": r"\Pi",
    "Σ": r"\Sigma",
    "Υ": r"\Upsilon",
    "Φ": r"\Phi",
    "Ψ": r"\Psi",
    "Ω": r"\Omega",
    "≤": r"\leq",
    "≥": r"\geq",
    "≠": r"\neq",
    "≈": r"\approx",
    "≃": r"\simeq",
    "≅": r"\cong",
    "≡": r"\equiv",
    "∼": r"\sim",
    "∝": r"\propto",
    "≪": r"\ll",
    "≫": r"\gg",
    "−": "-",
    "∓": r"\mp",
    "∗": r"\ast",
    "∘": r"\circ",
    "⋅": r"\cdot",
    "∙": r"\bullet",
    "∞": r"\infty",
    "∂": r"\partial",
    "∇": r"\nabla",
    "∑": r"\sum",
    "∏": r"\prod",
    "∫": r"\int",
    "√": r"\surd",
    "∀": r"\forall",
    "∃": r"\exists",
    "∅": r"\emptyset",
    "∈": r"\in",
    "∉": r"\notin",
    "∋": r"\ni",
    "⊂": r"\subset",
    "⊃": r"\supset",
    "⊆": r"\subseteq",
    "⊇": r"\supseteq",
    "∪": r"\cup",
    "∩": r"\cap",
    "∧": r"\wedge",
    "∨": r"\vee",
    "⊕": r"\oplus",
    "⊗": r"\otimes",
    "⊥": r"\perp",
    "∥": r"\parallel",
    "∣": r"\mid",
    "′": "'",
    "″": "''",
    "ℓ": r"\ell",
    "ℏ": r"\hbar",
    "ℵ": r"\aleph",
    "ℜ": r"\Re",
    "ℑ": r"\Im",
    "℘": r"\wp",
    "⟂": r"\perp",
    "⇒": r"\Rightarrow",
    "⇐": r"\Leftarrow",
    "⇔": r"\Leftrightarrow",
    "↔": r"\leftrightarrow",
    "↦": r"\mapsto",
    "⟶": r"\longrightarrow",
    "⟵": r"\longleftarrow",
    "⌈": r"\lceil",
    "⌉": r"\rceil",
    "⌊": r"\lfloor",
    "⌋": r"\rfloor",
    "⋯": r"\cdots",
    "⋮": r"\vdots",
    "⋱": r"\ddots",
    "★": r"\star",
    "☆": r"\star",
    "✓": r"\surd",
    "✔": r"\surd",
    "△": r"\triangle",
    "◦": r"\circ",
}

# Text-mode replacements for characters LaTeX has no definition for.
_TEXT = {
    "\u00a0": "~",  # no-break space
    "\u00ad": r"\-",  # soft hyphen
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "--",
    "\u2015": "---",
    "\u2016": r"\ensuremath{\|}",
    "\u2017": r"\_",
    "\u201b": "`",
    "\u201f": "``",
    "\u2027": r"\textperiodcentered",
    "\u2043": "-",
    "\u2044": "/",
    "\u2047": "??",
    "\u2048": "?!",
    "\u2049": "!?",
    "ο": "o",  # Greek capitals and omicron that look like Latin letters have no command
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΧ", "ABEZHIKMNOPTX", strict=True)),
    **dict(zip("ĦħĸŦŧ", "HhkTt", strict=True)),  # the Latin Extended-A letters T1 lacks
    # glyphs the typewriter font (lmtt) lacks, so code would silently lose them
    "Ĳ": "IJ",
    "ĳ": "ij",
    "™": r"\textsuperscript{TM}",
}

# Combining marks LaTeX can put on a letter, as its accent commands.
_ACCENTS = {
    "\u0300": "`",
    "\u0301": "'",
    "\u0302": "^",
    "\u0303": "~",
    "\u0304": "=",
    "\u0306": "u",
    "\u0307": ".",
    "\u0308": '"',
    "\u030a": "r",
    "\u030b": "H",
    "\u030c": "v",
    "\u0323": "d",
    "\u0327": "c",
    "\u0328": "k",
    "\u0331": "b",
}


# Accents set above the letter: an "i" or "j" under one loses its dot.
_ABOVE = frozenset("\u0300\u0301\u0302\u0303\u0304\u0306\u0307\u0308\u030a\u030b\u030c")


def _accented(char: str) -> str | None:
    """``ǎ`` -> ``{\\v{a}}``: an ASCII letter under accents LaTeX can build, else None."""
    parts = unicodedata.normalize("NFD", char)
    base, marks = parts[0], parts[1:]
    if not (marks and base.isascii() and base.isalpha()):
        return None
    if not all(mark in _ACCENTS for mark in marks):
        return None
    body = {"i": r"\i", "j": r"\j"}.get(base, base) if marks[0] in _ABOVE else base
    for mark in marks:
        body = f"\\{_ACCENTS[mark]}{{{body}}}"
    return "{" + body + "}"


def latex_char(char: str, *, bibtex: bool = False) -> str:
    """One character as LaTeX that pdflatex can typeset (see the module docstring)."""
    if char.isascii():
        if bibtex and char in _BIB_BRACES:
            return _BIB_BRACES[char]
        if char in _ASCII_SPECIALS:
            return _ASCII_SPECIALS[char]
        if char in "\t\n":  # a blank line would end the paragraph, or break a \section{...}
            return " "
        return char if " " <= char <= "~" else ""  # other control characters
    if char in NATIVE:
        return char
    if char in _MATH:
        return "{\\ensuremath{" + _MATH[char] + "}}"
    if char in _TEXT:
        value = _TEXT[char]
        return "{" + value + "}" if value.startswith("\\") else value
    category = unicodedata.category(char)
    if category == "Zs":
        return " "
    if category in ("Zl", "Zp"):
        return " "
    if category in ("Cc", "Cf", "Mn", "Me"):  # controls, zero-width, stray combining marks
        return ""
    accented = _accented(char)
    if accented is not None:
        return accented
    return _compatibility(char, bibtex=bibtex)


def _compatibility(char: str, *, bibtex: bool) -> str:
    """Ligatures, full-width, superscript and subscript forms by their plain equivalent;
    a letter with accents LaTeX cannot build by its base letter; else the replacement."""
    decomposition = unicodedata.decomposition(char)
    if not decomposition:
        return REPLACEMENT
    if not decomposition.startswith("<"):  # canonical: base letter + marks
        return latex_char(unicodedata.normalize("NFD", char)[0], bibtex=bibtex)
    plain = unicodedata.normalize("NFKD", char)
    text = "".join(latex_char(c, bibtex=bibtex) for c in plain)
    if not text.strip() or (REPLACEMENT in text and REPLACEMENT not in plain):
        return REPLACEMENT
    if decomposition.startswith("<super>"):
        return r"\textsuperscript{" + text + "}"
    if decomposition.startswith("<sub>"):
        return r"\textsubscript{" + text + "}"
    return text


def escape_latex(text: object, *, bibtex: bool = False) -> str:
    """Make text safe and printable in LaTeX: specials escaped, Unicode made printable.

    With ``bibtex=True`` braces become ``{\\textbraceleft}``/``{\\textbraceright}``, since
    BibTeX counts braces without looking at backslashes.
    """
    value = unicodedata.normalize("NFC", str(text)).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(latex_char(char, bibtex=bibtex) for char in value)


# --- URLs ------------------------------------------------------------------------------------

# Kept as they are: unreserved and reserved URL characters, and "%" starting a valid escape.
# Everything else (spaces, quotes, braces, backslashes, "^", "|", non-ASCII) is %-encoded.
_URL_SAFE = "-._~:/?#[]@!$&'()*+,;="
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def normalise_url(url: str) -> str:
    """A URL with only characters every output takes as they are: line breaks (arXiv
    metadata wraps) removed, spaces, quotes, angle brackets, braces, backslashes and
    non-ASCII %-encoded, a "%" not starting an escape written "%25"."""
    url = re.sub(r"\s*\n\s*", "", url.strip())
    url = _BAD_PERCENT.sub("%25", url)
    return quote(url, safe=_URL_SAFE + "%")


def latex_url(url: str) -> str:
    """A URL for ``\\href{...}``: %-encoded where needed, ``%`` and ``#`` escaped.

    hyperref reads ``_``, ``~``, ``&`` and ``$`` in the URL argument as they are, even inside
    another command's argument; ``\\%`` and ``\\#`` are the escapes it documents.
    """
    return normalise_url(url).replace("%", r"\%").replace("#", r"\#")


def bib_url(url: str) -> str:
    """A URL or DOI for a ``.bib`` field: %-encoded where needed, otherwise verbatim.

    natbib's styles put it into ``\\url{...}``/``\\doi{...}``, which read their argument
    verbatim, so an escape such as ``\\%`` would be printed. Braces and backslashes are
    %-encoded, so the field always stays brace-balanced.
    """
    return normalise_url(url)
