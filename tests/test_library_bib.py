from __future__ import annotations

import logging
from pathlib import Path

import pytest

from surveygen.library.bibtex import read_bib
from surveygen.library.records import Candidate, LoadResult

MAX = 1_000_000


def write_bib(tmp_path: Path, text: str, name: str = "refs.bib") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read(tmp_path: Path, text: str) -> tuple[Path, LoadResult]:
    path = write_bib(tmp_path, text)
    return path, read_bib(path, max_bytes=MAX)


def by_key(result: LoadResult) -> dict[str, Candidate]:
    return {c.key or "": c for c in result.candidates}


def make_pdf(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"%PDF-1.4\n%%EOF\n")
    return path


# --- real-world exports ---------------------------------------------------------------------


def test_zotero_export(tmp_path: Path) -> None:
    storage = tmp_path / "Zotero" / "storage" / "ABCD1234"
    pdf = make_pdf(storage / "Vaswani et al. - 2017 - Attention Is All You Need.pdf")
    snapshot = storage / "1706.html"
    text = f"""
@article{{vaswani_attention_2017,
\ttitle = {{Attention {{Is}} {{All}} {{You}} {{Need}}}},
\turl = {{http://arxiv.org/abs/1706.03762}},
\tdoi = {{10.48550/arXiv.1706.03762}},
\tabstract = {{The dominant sequence transduction models are based on complex recurrent or
convolutional neural networks. Our model achieves 28.4 {{BLEU}} on the {{WMT}} 2014 task,
improving over the existing best results by over 2 {{BLEU}} \\& uses 8 {{GPUs}}; 99\\% done.}},
\turldate = {{2023-01-05}},
\tpublisher = {{arXiv}},
\tauthor = {{Vaswani, Ashish and Shazeer, Noam and Parmar, Niki and Gomez, Aidan N. and
\t\tKaiser, {{\\L}}ukasz}},
\tmonth = dec,
\tyear = {{2017}},
\tnote = {{arXiv:1706.03762 [cs]}},
\tkeywords = {{Computer Science - Computation and Language}},
\tfile = {{arXiv Fulltext PDF:{pdf}:application/pdf;arXiv.org Snapshot:{snapshot}:text/html}},
}}

@inproceedings{{muller_uber_2020,
\taddress = {{M{{\\"u}}nchen}},
\ttitle = {{{{\\"U}}ber {{Sprachmodelle}} -- a {{Study}} of {{\\'E}}cole {{Polytechnique}}}},
\tbooktitle = {{Proceedings of the 58th {{Annual Meeting}} of the {{Association}} for
\t\t{{Computational Linguistics}}}},
\tpublisher = {{Association for Computational Linguistics}},
\tauthor = {{M{{\\"u}}ller, J{{\\"o}}rg and Garc{{\\'i}}a, Mar{{\\'i}}a}},
\tmonth = jul,
\tyear = {{2020}},
\tpages = {{1--10}},
\tdoi = {{10.18653/v1/2020.acl-main.1}},
\turl = {{https://aclanthology.org/2020.acl-main.1}},
}}
"""
    path, result = read(tmp_path, text)
    assert result.warnings == []
    assert (result.read, result.skipped) == (2, 0)
    first, second = result.candidates

    assert first.key == "vaswani_attention_2017"
    assert first.title == "Attention Is All You Need"
    assert first.authors == (
        "Ashish Vaswani",
        "Noam Shazeer",
        "Niki Parmar",
        "Aidan N. Gomez",
        "Łukasz Kaiser",
    )
    assert first.year == 2017
    assert first.abstract.startswith("The dominant sequence transduction models are based on")
    assert "28.4 BLEU on the WMT 2014 task" in first.abstract
    assert first.abstract.endswith("2 BLEU & uses 8 GPUs; 99% done.")
    assert "\n" not in first.abstract
    assert first.doi == "10.48550/arxiv.1706.03762"
    assert (first.arxiv_id, first.arxiv_version) == ("1706.03762", None)
    assert first.url == "http://arxiv.org/abs/1706.03762"
    assert first.venue is None  # "publisher" is not a venue
    assert first.pdf_path == pdf
    assert first.source == "file:refs.bib"
    assert first.origin == "user"
    assert first.where == f"{path}:2"

    assert second.title == "Über Sprachmodelle – a Study of École Polytechnique"
    assert second.authors == ("Jörg Müller", "María García")
    assert second.venue == (
        "Proceedings of the 58th Annual Meeting of the Association for Computational Linguistics"
    )
    assert second.doi == "10.18653/v1/2020.acl-main.1"
    assert second.arxiv_id is None
    assert second.pdf_path is None
    assert second.where == f"{path}:20"


def test_better_bibtex_export(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "storage" / "XYZ" / "Devlin et al. - 2019 - BERT.pdf")
    text = f"""@inproceedings{{devlinBERTPretrainingDeep2019,
  title = {{{{{{BERT}}}}: {{{{Pre-training}}}} of {{{{Deep Bidirectional Transformers}}}} for
    {{{{Language Understanding}}}}}},
  shorttitle = {{{{{{BERT}}}}}},
  booktitle = {{Proceedings of the 2019 {{{{Conference}}}} of the {{{{North American Chapter}}}}}},
  author = {{Devlin, Jacob and Chang, Ming-Wei and Lee, Kenton and Toutanova, Kristina}},
  year = {{2019}},
  month = jun,
  pages = {{4171--4186}},
  publisher = {{{{Association for Computational Linguistics}}}},
  address = {{{{Minneapolis, Minnesota}}}},
  doi = {{10.18653/v1/N19-1423}},
  urldate = {{2023-01-01}},
  eprint = {{1810.04805}},
  archiveprefix = {{arXiv}},
  file = {{{pdf}}}
}}
"""
    _, result = read(tmp_path, text)
    assert result.warnings == []
    (paper,) = result.candidates
    assert paper.title == (
        "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding"
    )
    assert paper.authors == ("Jacob Devlin", "Ming-Wei Chang", "Kenton Lee", "Kristina Toutanova")
    assert paper.venue == "Proceedings of the 2019 Conference of the North American Chapter"
    assert paper.doi == "10.18653/v1/n19-1423"
    assert paper.arxiv_id == "1810.04805"
    assert paper.pdf_path == pdf


def test_biblatex_date_and_eprinttype(tmp_path: Path) -> None:
    text = r"""
@online{smith2021,
  title = {A Study of Things},
  author = {Smith, John},
  date = {2021-03-01},
  eprint = {2103.00001v2},
  eprinttype = {arxiv},
  eprintclass = {cs.CL},
  url = {http://arxiv.org/abs/2103.00001v2},
  journaltitle = {Journal of Things},
}
@article{jones2019,
  title = {Other},
  date = {2019},
  eprint = {31415926},
  eprinttype = {pubmed},
}
@article{lee2018, title = {Range}, date = {2018-05/2018-06}}
@article{bad2020, title = {Bad Date}, date = {circa 2020}}
"""
    path, result = read(tmp_path, text)
    papers = by_key(result)
    assert papers["smith2021"].year == 2021
    assert (papers["smith2021"].arxiv_id, papers["smith2021"].arxiv_version) == ("2103.00001", 2)
    assert papers["smith2021"].venue == "Journal of Things"
    assert papers["jones2019"].year == 2019
    assert papers["jones2019"].arxiv_id is None  # a PubMed id is not an arXiv id
    assert papers["lee2018"].year == 2018
    assert papers["bad2020"].year is None
    assert result.warnings == [
        f"{path}:19: year 'circa 2020' ignored (expected a year from 1900 to 2100)"
    ]


def test_mendeley_export(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "papers" / "Kim2020.pdf")
    text = r"""@article{Kim2020,
abstract = {Knowledge distillation.},
archivePrefix = {arXiv},
arxivId = {2001.00001},
author = {Kim, Yoon and Rush, Alexander M.},
file = {:papers/Kim2020.pdf:pdf},
journal = {arXiv preprint arXiv:2001.00001},
title = {{Sequence-Level Knowledge Distillation}},
year = {2020}
}
"""
    _, result = read(tmp_path, text)
    assert result.warnings == []
    (paper,) = result.candidates
    assert paper.title == "Sequence-Level Knowledge Distillation"
    assert paper.authors == ("Yoon Kim", "Alexander M. Rush")
    assert paper.arxiv_id == "2001.00001"
    assert paper.venue is None  # an arXiv preprint has no venue
    assert paper.pdf_path == pdf


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("arxivid = {hep-th/9901001v1}", ("hep-th/9901001", 1)),
        ("arxiv = {arXiv:2101.00001}", ("2101.00001", None)),
        ("journal = {arXiv preprint arXiv:2101.00001}", ("2101.00001", None)),
        (
            "journal = {CoRR}, volume = {abs/2101.00001}, eprint = {2101.00001}",
            ("2101.00001", None),
        ),
        ("url = {https://arxiv.org/pdf/2101.00001v3.pdf}", ("2101.00001", 3)),
        ("url = {https://example.org/abs/2101.00001}", (None, None)),
        ("note = {Preprint at arXiv: 1905.00001}", ("1905.00001", None)),
    ],
)
def test_arxiv_id_sources(tmp_path: Path, fields: str, expected: tuple) -> None:
    _, result = read(tmp_path, f"@misc{{k, title = {{T}}, {fields}}}\n")
    paper = result.candidates[0]
    assert (paper.arxiv_id, paper.arxiv_version) == expected
    if "journal" in fields:
        assert paper.venue is None


def test_bad_arxiv_eprint_warns(tmp_path: Path) -> None:
    path, result = read(tmp_path, "@misc{k, title={T}, eprint={soon}, archiveprefix={arXiv}}\n")
    assert result.candidates[0].arxiv_id is None
    assert result.warnings == [f"{path}:1: eprint 'soon' ignored (not an arXiv identifier)"]


def test_latex_does_not_touch_urls_dois_and_paths(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "my_papers" / "a~b%20c--d.pdf")
    text = r"""@article{k,
  title = {Costs of 5% and R&D --- {\em emphasis} with $\alpha$-divergence},
  url = {https://example.org/~user/a_b%20c--d?x=1&y=2},
  doi = {10.1000/ab\_cd--ef},
  file = {my_papers/a~b%20c--d.pdf},
}
"""
    _, result = read(tmp_path, text)
    assert result.warnings == []
    (paper,) = result.candidates
    assert paper.title == "Costs of 5% and R&D — emphasis with α-divergence"
    assert paper.url == "https://example.org/~user/a_b%20c--d?x=1&y=2"
    assert paper.doi == "10.1000/ab_cd--ef"
    assert paper.pdf_path == pdf


def test_doi_from_doi_url(tmp_path: Path) -> None:
    text = "@article{k, title={T}, url={https://doi.org/10.1145/3292500.3330701}}\n"
    _, result = read(tmp_path, text)
    assert result.candidates[0].doi == "10.1145/3292500.3330701"
    text = "@article{k, title={T}, url={https://example.org/10.1145/3292500.3330701}}\n"
    _, result = read(tmp_path, text)
    assert result.candidates[0].doi is None


def test_author_forms(tmp_path: Path) -> None:
    text = r"""@book{k,
  title = {Names},
  author = {Smith, Jr., John and van der Berg, Jan and {Google Research} and
            {Barnes and Noble} and Jean de la Fontaine and {\AA}str{\"o}m, Karl and others},
}
"""
    _, result = read(tmp_path, text)
    assert result.candidates[0].authors == (
        "John Smith Jr.",
        "Jan van der Berg",
        "Google Research",
        "Barnes and Noble",
        "Jean de la Fontaine",
        "Karl Åström",
    )


def test_string_macros_and_concatenation(tmp_path: Path) -> None:
    text = r"""@string{nips = "Advances in Neural Information Processing Systems"}
@STRING{ACL = {Proceedings of {ACL}}}
@preamble{"\newcommand{\noop}[1]{}"}
@comment{This is a comment with @article{fake, title={Not an entry}}}

@inproceedings{a, title = {A}, booktitle = nips, month = jan, year = 2017}
@inproceedings{b, title = {B}, booktitle = nips # " 30", year = "2017"}
@inproceedings{c, title = {C}, booktitle = acl, month = "1~" # feb}
"""
    _, result = read(tmp_path, text)
    assert result.warnings == []
    assert (result.read, result.skipped) == (3, 0)
    papers = by_key(result)
    assert papers["a"].venue == "Advances in Neural Information Processing Systems"
    assert papers["a"].year == 2017
    assert papers["b"].venue == "Advances in Neural Information Processing Systems 30"
    assert papers["b"].year == 2017
    assert papers["c"].venue == "Proceedings of ACL"


def test_malformed_entries_among_good_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = """@article{good1, title = {Good One}, year = 2020}

@article{unclosed,
  title = {Unclosed brace
  author = {X},
}

@article{good2,
  title = "Good Two",
}

@article{nocomma
  title = {No comma after key},
}

@article{dupfield, title = {a}, title = {b}}
@article{good3, title = {Good Three}}
@article{eof, title = {Runs to the end of the file
"""
    caplog.set_level(logging.DEBUG)
    path, result = read(tmp_path, text)
    assert [c.key for c in result.candidates] == ["good1", "good2", "good3"]
    assert [c.where for c in result.candidates] == [f"{path}:1", f"{path}:8", f"{path}:17"]
    assert (result.read, result.skipped) == (7, 4)
    assert len(result.warnings) == 4
    prefixes = [f"{path}:{n}: skipped: malformed entry (" for n in (3, 12, 16, 18)]
    for warning, prefix in zip(result.warnings, prefixes, strict=True):
        assert warning.startswith(prefix), warning
        assert warning.endswith(")")
    assert "Expected comma after entry key" in result.warnings[1]
    assert "duplicate field title" in result.warnings[2]
    # bibtexparser's own log lines are silenced: the warnings above replace them
    assert not [r for r in caplog.records if r.name.startswith("bibtexparser")]


def test_duplicate_keys_and_missing_title(tmp_path: Path) -> None:
    text = """@article{same, title = {First}}
@article{notitle, author = {A. Author}, year = 2020}
@article{same, title = {Second}}
@misc{emptytitle, title = {  }}
"""
    path, result = read(tmp_path, text)
    assert [c.title for c in result.candidates] == ["First"]
    assert (result.read, result.skipped) == (4, 3)
    assert result.warnings == [
        f"{path}:2: skipped: no title",
        f"{path}:3: skipped: duplicate entry key 'same' (first at line 1)",
        f"{path}:4: skipped: no title",
    ]


def test_bad_year_keeps_entry(tmp_path: Path) -> None:
    path, result = read(tmp_path, "@article{k, title = {T}, year = {in press}}\n")
    assert result.candidates[0].year is None
    assert result.warnings == [
        f"{path}:1: year 'in press' ignored (expected a year from 1900 to 2100)"
    ]


# --- attached files -------------------------------------------------------------------------


def test_file_attachments(tmp_path: Path) -> None:
    absolute = make_pdf(tmp_path / "elsewhere" / "abs.PDF")
    relative = make_pdf(tmp_path / "lib" / "pdfs" / "rel.pdf")
    jabref = make_pdf(tmp_path / "lib" / "jab ref.pdf")
    text = f"""@article{{absolute, title = {{A}}, file = {{Full Text:{absolute}:application/pdf}}}}
@article{{relative, title = {{B}},
  file = {{Snapshot:pdfs/page.html:text/html;Full Text PDF:pdfs/rel.pdf:application/pdf}}}}
@article{{jabref, title = {{C}}, file = {{:jab ref.pdf:PDF}}}}
@article{{missing, title = {{D}}, file = {{Full Text PDF:pdfs/gone.pdf:application/pdf}}}}
@article{{windows, title = {{E}},
  file = {{Full Text PDF:C\\:\\\\Users\\\\me\\\\Zotero\\\\x.pdf:application/pdf}}}}
@article{{htmlonly, title = {{F}}, file = {{Snapshot:pdfs/page.html:text/html}}}}
"""
    path = write_bib(tmp_path / "lib", text)
    result = read_bib(path, max_bytes=MAX)
    papers = by_key(result)
    assert papers["absolute"].pdf_path == absolute
    assert papers["relative"].pdf_path == relative
    assert papers["jabref"].pdf_path == jabref
    assert papers["missing"].pdf_path is None
    assert papers["windows"].pdf_path is None
    assert papers["htmlonly"].pdf_path is None
    assert (result.read, result.skipped) == (6, 0)  # a missing PDF does not drop the entry
    assert result.warnings == [
        f"{path}:5: attached PDF not found: {tmp_path / 'lib' / 'pdfs' / 'gone.pdf'}",
        f"{path}:6: attached PDF not found: C:\\Users\\me\\Zotero\\x.pdf",
    ]


def test_attached_pdf_with_a_name_too_long_keeps_the_entry(tmp_path: Path) -> None:
    # stat() fails with ENAMETOOLONG rather than "not found": still one warning, no error.
    name = "x" * 5000 + ".pdf"
    text = (
        f"@article{{long, title = {{Long name}}, file = {{Full Text:{name}:application/pdf}}}}\n"
        "@article{next, title = {Next entry}}\n"
    )
    path, result = read(tmp_path, text)
    assert [c.key for c in result.candidates] == ["long", "next"]
    assert result.candidates[0].pdf_path is None
    (warning,) = result.warnings
    assert warning.startswith(f"{path}:1: attached PDF unusable (File name too long): ")
    assert len(warning) < len(str(path)) + 300  # the 5000-character name is shortened
    assert (result.read, result.skipped) == (2, 0)


def test_titles_are_capped_at_300_characters(tmp_path: Path) -> None:
    long_title = " ".join(["word"] * 100)
    _, result = read(tmp_path, f"@article{{k, title = {{{long_title}}}}}\n")
    title = result.candidates[0].title
    assert len(title) <= 300 and long_title.startswith(title) and title.endswith("word")
    assert result.warnings == []


# --- file-level problems --------------------------------------------------------------------


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.bib"
    path.write_bytes("@article{k, title = {Caf\u00e9}}\n".encode("latin-1"))
    result = read_bib(path, max_bytes=MAX)
    assert result.candidates == []
    assert (result.read, result.skipped) == (1, 1)
    assert result.warnings == [
        f"{path}: skipped: not UTF-8 text (invalid byte at offset 24); export the .bib as UTF-8"
    ]


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.bib"
    path.write_bytes(b"\xef\xbb\xbf@article{k, title = {Caf\xc3\xa9}}\n")
    result = read_bib(path, max_bytes=MAX)
    assert [c.title for c in result.candidates] == ["Café"]
    assert result.candidates[0].where == f"{path}:1"


def test_empty_and_entryless_files(tmp_path: Path) -> None:
    empty = write_bib(tmp_path, "  \n\n", name="empty.bib")
    assert read_bib(empty, max_bytes=MAX).warnings == [f"{empty}: skipped: empty file"]
    comments = write_bib(tmp_path, "% only comments\n@comment{x}\n", name="comments.bib")
    result = read_bib(comments, max_bytes=MAX)
    assert result.warnings == [
        f"{comments}: skipped: no BibTeX entries (such as @article{{key, ...}}) found"
    ]
    assert (result.read, result.skipped) == (1, 1)


def test_size_cap_and_unreadable(tmp_path: Path) -> None:
    path = write_bib(tmp_path, "@article{k, title = {A title long enough}}\n" * 10)
    result = read_bib(path, max_bytes=50)
    assert result.candidates == []
    assert result.warnings == [
        f"{path}: skipped: larger than the 50 bytes limit ({path.stat().st_size} bytes); "
        "raise max_file_mb in surveygen.toml or split it"
    ]
    missing = tmp_path / "missing.bib"
    assert read_bib(missing, max_bytes=MAX).warnings == [
        f"{missing}: skipped: cannot read it (No such file or directory)"
    ]


def test_braced_year_and_home_relative_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    pdf = make_pdf(tmp_path / "home" / "papers" / "x.pdf")
    text = "@article{k, title = {T}, year = {{2019}}, file = {~/papers/x.pdf}}\n"
    _, result = read(tmp_path, text)
    assert result.warnings == []
    assert result.candidates[0].year == 2019
    assert result.candidates[0].pdf_path == pdf
