"""Shared data for the rendering tests: one fixed survey document, its library, hostile text,
golden-file comparison and a LaTeX build helper.

Golden files live in tests/golden/. After an intended change to a template or renderer,
regenerate them with ``SURVEYGEN_UPDATE_GOLDEN=1 pytest tests/test_render*.py
tests/test_bibtex.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from surveygen import __version__
from surveygen.document import DocSection, Labels, SurveyDoc, Table, TableRow
from surveygen.models import Outline, OutlineNode, Paper, Section
from surveygen.stages.render import doc_from_outline

GOLDEN = Path(__file__).parent / "golden"
# Read at import: conftest's autouse fixture removes every SURVEYGEN_* variable before a test.
UPDATE_GOLDEN = os.environ.get("SURVEYGEN_UPDATE_GOLDEN") == "1"


def check_golden(name: str, actual: str) -> None:
    """Compare with tests/golden/<name>; SURVEYGEN_UPDATE_GOLDEN=1 rewrites it instead."""
    # The version changes with every release; the golden files should not.
    actual = actual.replace(f"surveygen {__version__}", "surveygen X.Y.Z")
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
    assert path.exists(), f"{path} is missing; run with SURVEYGEN_UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8")


# --- the fixed survey --------------------------------------------------------------------------


def make_outline() -> Outline:
    return Outline(
        title="Retrieval-Augmented Generation: A Survey",
        sections=(
            OutlineNode("n1", "Introduction", "Why language models need retrieval."),
            OutlineNode(
                "n2",
                "Retrievers",
                "How retrievers are built and trained.",
                children=(
                    OutlineNode(
                        "n3",
                        "Dense retrieval",
                        "Dual encoders and their training.\n\nCompare negatives.",
                    ),
                    OutlineNode("n4", "Sparse retrieval"),
                ),
            ),
            OutlineNode("n5", "Conclusion", "Open problems."),
        ),
    )


def make_papers() -> dict[str, Paper]:
    library = [
        Paper(
            "vaswani2017attention",
            "Attention Is All\n  You Need",
            ("Ashish Vaswani", "Noam Shazeer", "Niki Parmar", "Jakob Uszkoreit"),
            2017,
            arxiv_id="1706.03762",
        ),
        Paper(
            "lewis2020retrieval",
            "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
            ("Lewis, Patrick", "Ethan Perez"),
            2020,
            venue="NeurIPS",
            url="https://proceedings.neurips.cc/paper/2020/hash/6b493230",
        ),
        Paper(
            "guu2020realm",
            "REALM: Retrieval-Augmented Language Model Pre-Training",
            ("Kelvin Guu",),
            2020,
            doi="10.48550/arXiv.2002.08909",
        ),
        Paper(
            "karpukhin2020dense",
            "Dense Passage Retrieval for Open-Domain Question Answering?",
            ("Vladimir Karpukhin", "Barlas Oğuz", "Jean-Baptiste Alayrac"),
        ),
        Paper(
            "guu2020second",
            "Another {REALM} Study",
            ("Guu, Kelvin",),
            2020,
            venue="ICML",
            url="https://example.org/guu_2020%20v2#sec~3",
        ),
        Paper("never2021cited", "A Paper Nobody Cites", ("No One",), 2021),
    ]
    return {paper.key: paper for paper in library}


def make_sections() -> dict[str, Section]:
    written = [
        Section(
            "n1",
            "Retrieval grounds generation [@lewis2020retrieval; @guu2020realm], building on "
            "the Transformer [@vaswani2017attention] [3].",
        ),
        # n2 (a parent) is not written yet: it still gets its heading
        Section(
            "n3",
            "Dual encoders [@karpukhin2020dense, @lewis2020retreival] embed passages.\n\n\n\n"
            "They are trained end to end [@guu2020realm; @vaswani2017attention; "
            "@lewis2020retrieval].",
        ),
        Section("n4", "Sparse methods remain strong baselines [@made_up2023]."),
        Section("n5", "Retrieval keeps models current [@guu2020realm]."),
        Section("n9", "A section for a node the outline no longer has [@never2021cited]."),
    ]
    return {section.node_id: section for section in written}


ABSTRACT = "We survey retrieval-augmented generation [@lewis2020retrieval]."

TABLE = Table(
    caption="Dense retrievers compared",
    columns=("Retriever", "Training | data"),
    rows=(
        TableRow("karpukhin2020dense", ("Dual encoder", "NQ,\nTriviaQA")),
        TableRow("made_up_key", ("Invented", "none")),
        TableRow("guu2020second", ("Knowledge retriever", "")),
    ),
)


# Markdown the richer document's sections get instead of their plain text.
MARKUP = {
    "n1": "Retrieval grounds generation [@lewis2020retrieval; @guu2020realm], building on "
    "the *Transformer* [@vaswani2017attention] [3].",
    "n5": "Retrieval keeps models current [@guu2020realm]. Open problems:\n\n"
    "- **faithfulness** of `generate()` to the passages;\n"
    "- see [the benchmark](https://example.org/bench?a=1&b=2).",
}


def make_doc() -> SurveyDoc:
    """The fixture of every format's golden files: the outline's sections with some Markdown,
    an abstract and a table."""
    doc = doc_from_outline(make_outline(), make_sections(), abstract=ABSTRACT)
    sections = tuple(
        replace(
            section,
            text=MARKUP.get(section.id, section.text),
            table=TABLE if section.id == "n3" else None,
        )
        for section in doc.sections
    )
    return replace(doc, sections=sections)


# --- hostile text --------------------------------------------------------------------------------

HOSTILE = (
    r"50% of $x_1$ & {#tags} \input{/etc/passwd} </script><script>alert(1)</script>"
    " 深度学习 😀 ~^_"
)
HOSTILE_URL = 'https://example.org/a_b%20c#frag~x"><script>alert(1)</script>{\\}'


def hostile_papers() -> dict[str, Paper]:
    papers = [
        Paper(
            "evil2024",
            "Title " + HOSTILE,
            ("Ann " + HOSTILE, "Lee, Bob and Co", "{Team " + HOSTILE + "}"),
            2024,
            venue="Venue " + HOSTILE,
            abstract="Abstract " + HOSTILE,
            url=HOSTILE_URL,
            doi="10.1000/x_y%2F{z}" + HOSTILE,
            arxiv_id="2401.00001",
        ),
        Paper("plain2023", "A Plain Paper", ("Jane Roe",), 2023),
    ]
    return {paper.key: paper for paper in papers}


def hostile_doc() -> SurveyDoc:
    text = (
        f"Intro {HOSTILE} [@evil2024].\n\n"
        f"- item {HOSTILE} [@plain2023]\n"
        "- [link](javascript:alert(1)) and <img src=x onerror=alert(1)>\n\n"
        f"> quote {HOSTILE}\n\n"
        "```\n\\end{verbatim} " + HOSTILE + "\n```\n\n"
        f"`code {HOSTILE}` and **bold {HOSTILE}**\n\n"
        f"# Heading {HOSTILE}\n\n"
        "<script>alert(2)</script>\n"
    )
    return SurveyDoc(
        title="Survey " + HOSTILE,
        abstract=f"Abstract {HOSTILE} [@evil2024].",
        sections=(
            DocSection(
                "s1",
                "Section " + HOSTILE,
                1,
                text,
                Table(
                    "Caption " + HOSTILE,
                    ("Column " + HOSTILE,),
                    (TableRow("evil2024", ("Cell " + HOSTILE,)),),
                ),
            ),
        ),
        labels=Labels(
            abstract="Abstract " + HOSTILE,
            references="Refs " + HOSTILE,
            paper="Paper " + HOSTILE,
            table="Table " + HOSTILE,
        ),
        language="English",
    )


# --- building LaTeX ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatexBuild:
    pdf: Path
    log: str
    bbl: str

    def text(self) -> str:
        """The PDF's text: pdftotext if installed, else pypdf (a surveygen dependency)."""
        if shutil.which("pdftotext"):
            done = subprocess.run(
                ["pdftotext", "-enc", "UTF-8", str(self.pdf), "-"],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
            return done.stdout
        from pypdf import PdfReader

        return "\n".join(page.extract_text() for page in PdfReader(self.pdf).pages)

    def uris(self) -> list[str]:
        """Every URI a link in the PDF points to."""
        from pypdf import PdfReader

        uris = []
        for page in PdfReader(self.pdf).pages:
            for annotation in page.get("/Annots") or []:
                action = annotation.get_object().get("/A")
                if action is not None and "/URI" in action:
                    uris.append(str(action["/URI"]))
        return uris


def require_latexmk() -> None:
    """Fail on CI (which installs TeX), skip with a reason elsewhere."""
    if shutil.which("latexmk") and shutil.which("pdflatex") and shutil.which("bibtex"):
        return
    reason = "latexmk, pdflatex and bibtex are needed (Debian: texlive-latex-recommended etc.)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: install TeX on the runner")
    pytest.skip(reason)


def build_latex(folder: Path, tex: str, bib: str, *, name: str = "survey") -> LatexBuild:
    """Write ``<name>.tex`` and ``references.bib`` into ``folder`` and build the PDF."""
    require_latexmk()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.tex").write_text(tex, encoding="utf-8")
    (folder / "references.bib").write_text(bib, encoding="utf-8")
    done = subprocess.run(
        ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    log_path = folder / f"{name}.log"
    log = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
    errors = "\n".join(re.findall(r"^!.*(?:\n.*){0,3}", log, re.MULTILINE))
    assert done.returncode == 0, f"latexmk failed:\n{errors or done.stdout[-3000:]}"
    bbl_path = folder / f"{name}.bbl"
    return LatexBuild(
        pdf=folder / f"{name}.pdf",
        log=log,
        bbl=bbl_path.read_text(encoding="utf-8") if bbl_path.exists() else "",
    )


def assert_no_undefined_citations(build: LatexBuild) -> None:
    assert build.pdf.is_file()
    undefined = re.findall(r"Citation `[^']*' on page \d+ undefined", build.log)
    assert not undefined, undefined
    assert "There were undefined references" not in build.log
