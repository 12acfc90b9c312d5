"""One library out of many sources: keys, de-duplication and merging, ranking (pure)."""

from __future__ import annotations

import pytest

from surveygen.citations import find_citations
from surveygen.library.keys import is_valid_key, make_key
from surveygen.library.merge import assign_keys, identities, merge_candidates, previous_keys
from surveygen.library.rank import choose, clean_queries, relevance, shares_terms
from surveygen.library.records import SEARCH, USER, Candidate


def cand(title: str, **kw) -> Candidate:
    kw.setdefault("source", "file:lib.jsonl")
    return Candidate(title=title, **kw)


# --- keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authors", "year", "title", "key"),
    [
        (
            ["Ashish Vaswani", "Noam Shazeer"],
            2017,
            "Attention Is All You Need",
            "vaswani2017attention",
        ),
        (["Vaswani, Ashish"], 2017, "Attention Is All You Need", "vaswani2017attention"),
        (["Ludwig van Beethoven"], 1990, "On the Symphony", "beethoven1990symphony"),
        (["van der Berg, Jan"], 2001, "A Study", "berg2001study"),
        (["Jan van der Berg"], 2001, "A Study", "berg2001study"),
        (["Thomas Müller"], 2020, "Über Alles", "muller2020uber"),
        (["Barlas Oğuz"], 2020, "Dense Passage Retrieval", "oguz2020dense"),
        (["Martin Luther King Jr."], 1963, "I Have a Dream", "king1963i"),
        (["Jean-Luc Picard-Smith"], 2364, "Towards the Stars", "picardsmith2364stars"),
        ([], 2020, "Deep Learning", "anon2020deep"),
        (["", "  "], 2020, "Deep Learning", "anon2020deep"),
        (["王小明"], 2021, "Deep Learning", "anon2021deep"),
        (["A Smith"], None, "Deep Learning", "smithnddeep"),
        (
            ["A Smith"],
            2020,
            "BERT: Pre-training of Deep Bidirectional Transformers",
            "smith2020bert",
        ),
        (["A Smith"], 2023, "Self-RAG: Learning to Retrieve", "smith2023self"),
        (["A Smith"], 2020, "The", "smith2020"),
        (["A Smith"], 2020, "3D Vision for the Masses", "smith20203d"),
    ],
)
def test_make_key(authors: list[str], year: int | None, title: str, key: str) -> None:
    assert make_key(authors, year, title, set()) == key


def test_make_key_disambiguates_without_mutating_taken() -> None:
    taken = {"smith2020deep", "smith2020deepa"}
    assert make_key(["A Smith"], 2020, "Deep nets", taken) == "smith2020deepb"
    assert taken == {"smith2020deep", "smith2020deepa"}
    many = {"x2020y"} | {"x2020y" + chr(c) for c in range(ord("a"), ord("z") + 1)}
    assert make_key(["Q X"], 2020, "Y", many) == "x2020yaa"


@pytest.mark.parametrize("given", ["smith2020.", "smith-", "smith:", "has space", "a{b}", "-x"])
def test_given_keys_the_citation_parser_cannot_read_whole_are_replaced(given: str) -> None:
    merged, _ = merge_candidates(
        [cand("Deep Things", authors=("Ann Smith",), year=2020, key=given)]
    )
    warnings = assign_keys(merged)
    (item,) = merged
    assert item.key == "smith2020deep"
    assert find_citations(f"[@{item.key}]") == [item.key]
    assert len(warnings) == 1 and "not a valid citation key" in warnings[0]
    assert not is_valid_key(given)


def test_user_keys_win_over_generated_ones_whatever_the_order() -> None:
    merged, _ = merge_candidates(
        [
            cand("Deep one", authors=("A Smith",), year=2020),
            cand("Other", key="smith2020deep"),
            cand("Third", key="Vaswani:2017_attn-v1.2"),
        ]
    )
    assert assign_keys(merged) == []
    assert [m.key for m in merged] == ["smith2020deepa", "smith2020deep", "Vaswani:2017_attn-v1.2"]


def test_a_key_given_twice_is_kept_once_case_insensitively() -> None:
    merged, _ = merge_candidates(
        [
            cand("First", key="mykey", where="a.bib:3"),
            cand("Deep second", key="MyKey", where="b.bib:9"),
        ]
    )
    warnings = assign_keys(merged)
    assert merged[0].key == "mykey" and merged[1].key != "MyKey"
    assert warnings == ["b.bib:9: key 'MyKey' is already used; a new key is made"]


def test_generated_keys_do_not_depend_on_input_order() -> None:
    papers = [cand(f"Deep study {n}", authors=("A Smith",), year=2020) for n in "xyzw"]
    forward, _ = merge_candidates(papers)
    backward, _ = merge_candidates(list(reversed(papers)))
    assign_keys(forward)
    assign_keys(backward)
    assert {m.paper.title: m.key for m in forward} == {m.paper.title: m.key for m in backward}
    assert sorted(m.key for m in forward) == [
        "smith2020deep",
        "smith2020deepa",
        "smith2020deepb",
        "smith2020deepc",
    ]


def test_keys_of_an_earlier_run_are_kept_when_the_library_grows() -> None:
    first, _ = merge_candidates([cand("Deep study z", authors=("A Smith",), year=2020)])
    assign_keys(first)
    assert first[0].key == "smith2020deep"
    lines = [{"key": first[0].key, "title": "Deep study z"}]
    # A paper that sorts before it now shares the base key: the old paper keeps its key.
    grown, _ = merge_candidates(
        [
            cand("Deep study a", authors=("B Smith",), year=2020),
            cand("Deep study z", authors=("A Smith",), year=2020, source="arxiv:search"),
        ]
    )
    assign_keys(grown, previous_keys(lines))
    assert {m.paper.title: m.key for m in grown} == {
        "Deep study z": "smith2020deep",
        "Deep study a": "smith2020deepa",
    }


def test_a_new_preprint_with_the_same_title_never_takes_an_earlier_key() -> None:
    lines = [{"key": "smith2020deep", "title": "Deep study", "arxiv_id": "2001.00001"}]
    merged, _ = merge_candidates(
        [
            cand("Deep study", authors=("A Smith",), year=2020, arxiv_id="2002.00002"),
            cand("Deep study", authors=("A Smith",), year=2020, arxiv_id="2001.00001", source="s"),
        ]
    )
    assert len(merged) == 2
    assign_keys(merged, previous_keys(lines))
    assert {m.paper.arxiv_id: m.key for m in merged} == {
        "2001.00001": "smith2020deep",
        "2002.00002": "smith2020deepa",
    }


def test_previous_keys_match_by_arxiv_id_and_doi_and_ignore_bad_lines() -> None:
    lines = [
        {"key": "old1", "title": "Some title here", "arxiv_id": "2101.00001v3"},
        {"key": "old2", "title": "Another title", "doi": "10.1000/xyz"},
        {"key": "bad key", "title": "Ignored title"},
        {"title": "No key at all"},
        {"key": "x", "title": 5},
    ]
    prev = previous_keys(lines)
    assert prev["arxiv:2101.00001"].key == "old1"
    assert prev["doi:10.1000/xyz"].key == "old2"
    assert "title:ignored title" not in prev
    merged, _ = merge_candidates(
        [cand("Renamed in this version", arxiv_id="2101.00001"), cand("T", doi="10.1000/xyz")]
    )
    assign_keys(merged, prev)
    assert [m.key for m in merged] == ["old1", "old2"]


# --- de-duplication -------------------------------------------------------------------------


def test_same_arxiv_id_any_version_is_one_paper_and_user_data_wins() -> None:
    found = cand(
        "Attention is all you need",
        authors=("Ashish Vaswani", "Noam Shazeer"),
        year=2017,
        abstract="From arXiv.",
        arxiv_id="1706.03762",
        arxiv_version=7,
        url="https://arxiv.org/abs/1706.03762",
        pdf_url="http://x/pdf/1706.03762v7",
        origin=SEARCH,
        source="arxiv:search",
        query="transformers",
    )
    mine = cand(
        "Attention Is All You Need (my copy)",
        year=2017,
        arxiv_id="1706.03762",
        arxiv_version=1,
        venue="NeurIPS",
        key="vaswani17",
        source="file:refs.bib",
    )
    merged, duplicates = merge_candidates([found, mine])
    assert duplicates == 1
    (item,) = merged
    p = item.paper
    assert p.title == "Attention Is All You Need (my copy)"  # the user's
    assert p.authors == ("Ashish Vaswani", "Noam Shazeer")  # filled from arXiv
    assert p.abstract == "From arXiv." and p.venue == "NeurIPS"
    assert p.arxiv_version == 1 and p.pdf_url == "http://x/pdf/1706.03762v7"
    assert p.key == "vaswani17" and p.query == "transformers" and p.origin == USER
    assert item.sources == ["file:refs.bib", "arxiv:search"] and item.is_user


def test_doi_then_title_join_across_sources() -> None:
    a = cand("Dense Passage Retrieval for Open-Domain QA", doi="10.18653/v1/2020.emnlp-main.550")
    b = cand("DPR", doi="10.18653/v1/2020.emnlp-main.550", source="file:b.jsonl")
    c = cand("Dense passage retrieval for open-domain QA.", source="folder:pdfs")
    d = cand(
        "{Dense} Passage Retrieval for Open-Domain {QA}",
        arxiv_id="2004.04906",
        origin=SEARCH,
        source="arxiv:search",
    )
    merged, duplicates = merge_candidates([a, b, c, d])
    assert duplicates == 3 and len(merged) == 1
    assert merged[0].paper.arxiv_id == "2004.04906"
    assert merged[0].sources == ["file:lib.jsonl", "file:b.jsonl", "folder:pdfs", "arxiv:search"]


def test_same_title_different_preprints_stay_apart() -> None:
    a = cand("A Survey of Large Language Models", arxiv_id="2303.18223")
    b = cand("A survey of large language models", arxiv_id="2402.06196", source="x")
    c = cand("A Survey of Large Language Models", source="y")  # joins one of them
    merged, duplicates = merge_candidates([a, b, c])
    assert len(merged) == 2 and duplicates == 1
    assert {m.paper.arxiv_id for m in merged} == {"2303.18223", "2402.06196"}


def test_arxiv_doi_counts_as_the_arxiv_id() -> None:
    a = cand("Paper one", doi="10.48550/arxiv.2101.00001")
    b = cand("Paper one, retitled", arxiv_id="2101.00001", source="arxiv:ids")
    merged, duplicates = merge_candidates([a, b])
    assert duplicates == 1 and merged[0].paper.arxiv_id == "2101.00001"
    assert identities(a)[0] == "arxiv:2101.00001"


def test_short_titles_identify_nothing() -> None:
    merged, duplicates = merge_candidates([cand("Notes"), cand("Notes", source="other")])
    assert duplicates == 0 and len(merged) == 2


def test_user_papers_come_first_in_input_order() -> None:
    found = cand("Found paper title", origin=SEARCH, source="arxiv:search")
    mine1, mine2 = cand("My first paper title"), cand("My second paper title")
    merged, _ = merge_candidates([found, mine1, mine2])
    assert [m.paper.title for m in merged] == [
        "My first paper title",
        "My second paper title",
        "Found paper title",
    ]


# --- ranking ----------------------------------------------------------------------------------


def test_relevance_prefers_papers_about_the_topic() -> None:
    papers = [
        ("Protein folding with deep learning", "We predict protein structures."),
        (
            "Retrieval-augmented generation for question answering",
            "A retriever fetches passages that a generator conditions on to answer questions.",
        ),
        ("Dense passage retrieval", "Dual encoders retrieve passages for open-domain QA."),
        ("", ""),
    ]
    scores = relevance(
        "retrieval-augmented generation", ["dense retrieval question answering"], papers
    )
    assert scores[1] > scores[2] > scores[0] >= 0.0
    assert scores[3] == 0.0 and all(0.0 <= s <= 1.0 for s in scores)


def test_relevance_degenerate_inputs() -> None:
    assert relevance("topic", [], []) == []
    assert relevance("the of and", [], [("the", "of and")]) == [0.0]


def test_choose_keeps_every_user_paper_and_fills_with_the_best_results() -> None:
    is_user = [True, True, False, False, False, False]
    scores = [0.5, 0.0, 0.9, 0.1, 0.6, 0.8]
    screened = [None, None, 9.0, None, 2.0, 7.0]
    on_topic = [True, False, True, True, True, True]
    choice = choose(is_user, scores, screened, on_topic, max_papers=4, threshold=4.0)
    # 2 places left: the screened-in results (9, 7) before unrated ones; 4 is screened out.
    assert choice.kept == [0, 1, 2, 5]
    assert choice.dropped == [3, 4]
    assert choice.off_topic == [1]  # unrated user paper sharing no word with the topic


def test_choose_never_drops_user_papers_even_beyond_max_papers() -> None:
    choice = choose(
        [True] * 5 + [False],
        [0.3] * 6,
        [None] * 5 + [10.0],
        [True] * 6,
        max_papers=2,
        threshold=4.0,
    )
    assert choice.kept == [0, 1, 2, 3, 4] and choice.dropped == [5]


def test_choose_flags_user_papers_the_screen_rates_low() -> None:
    choice = choose(
        [True, True, False],
        [0.5, 0.5, 0.5],
        [1.0, 8.0, 5.0],
        [True] * 3,
        max_papers=10,
        threshold=4.0,
    )
    assert choice.off_topic == [0] and choice.kept == [0, 1, 2]


def test_shares_terms_is_independent_of_the_rest_of_the_library() -> None:
    papers = [
        ("Dense Passage Retrieval", "Dual encoders retrieve passages."),
        ("Protein folding kinetics", "Chaperones fold proteins."),
        ("", ""),
    ]
    assert shares_terms("retrieval-augmented language models", [], papers) == [True, False, False]
    assert shares_terms("x", ["protein structure"], papers) == [False, True, False]


def test_clean_queries() -> None:
    got = clean_queries(
        "RAG", ["  dense   retrieval ", "rag", "Dense retrieval", "", *"abcdefghij"]
    )
    assert got[0] == "dense retrieval" and "rag" not in [q.lower() for q in got]
    assert len(got) == 8
