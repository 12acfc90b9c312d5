"""Pure logic of the digest and write stages: no network, no LLM."""

from __future__ import annotations

import pytest

from surveygen.models import Digest, Evidence, NodeDigest, Outline, OutlineNode, Paper
from surveygen.stages.digest import (
    MAX_EVIDENCE_PER_NODE,
    MIN_RELOCATED_WORDS,
    DigestDraft,
    EvidenceDraft,
    NodeEvidenceDraft,
    digest_targets,
    number_sentences,
    paper_sentences,
    verify_digest,
)
from surveygen.stages.write import (
    clean_section_text,
    evidence_by_node,
    parent_titles,
    prune,
)
from surveygen.text import approx_tokens

# --- digest: paper_sentences / number_sentences ----------------------------------------------

# Each sentence is 40 characters: 10 approximate tokens, 12 with the per-sentence allowance.
CLAIMS = [f"Claim {c} says retrieval helps generation." for c in "ABCDEF"]


def test_paper_sentences_prefers_text_over_abstract() -> None:
    paper = Paper(
        key="k",
        title="T",
        abstract="The abstract sentence. Another abstract sentence.",
        text="The body says one thing. The body says another.",
    )
    assert paper_sentences(paper, max_tokens=1_000) == [
        "The body says one thing.",
        "The body says another.",
    ]


def test_paper_sentences_uses_abstract_without_text() -> None:
    paper = Paper(key="k", title="T", abstract="The abstract sentence. Another one here.")
    assert paper_sentences(paper, max_tokens=1_000) == [
        "The abstract sentence.",
        "Another one here.",
    ]


def test_paper_sentences_falls_back_to_title() -> None:
    paper = Paper(key="k", title="Dense Passage Retrieval for Open-Domain QA")
    assert paper_sentences(paper, max_tokens=1_000) == [
        "Dense Passage Retrieval for Open-Domain QA"
    ]


def test_paper_sentences_falls_back_to_title_when_nothing_fits() -> None:
    paper = Paper(key="k", title="Tiny budget", text=" ".join(CLAIMS))
    assert paper_sentences(paper, max_tokens=5) == ["Tiny budget"]


@pytest.mark.parametrize(("max_tokens", "count"), [(12, 1), (35, 2), (36, 3), (72, 6), (999, 6)])
def test_paper_sentences_cut_at_max_tokens(max_tokens: int, count: int) -> None:
    assert all(approx_tokens(c) == 10 for c in CLAIMS)  # precondition
    paper = Paper(key="k", title="T", text=" ".join(CLAIMS))
    assert paper_sentences(paper, max_tokens=max_tokens) == CLAIMS[:count]


def test_number_sentences_from_zero() -> None:
    assert number_sentences(["First one.", "Second one.", "Third."]) == (
        "[0] First one.\n[1] Second one.\n[2] Third."
    )
    assert number_sentences([]) == ""


# --- digest: verify_digest --------------------------------------------------------------------

SENTENCES = [
    "Retrieval-augmented generation conditions a language model on passages fetched from an "
    "external corpus.",
    "We train the retriever and the generator jointly with a marginal likelihood objective.",
    "On open-domain question answering the model improves exact match by 4.2 points over a "
    "closed-book baseline.",
    "Dense passage retrieval outperforms BM25 when in-domain training data is available.",
    "The index can be swapped at test time without retraining the generator.",
    "Latency grows linearly with the number of retrieved passages.",
]
# One verbatim piece of each sentence, by index.
QUOTES = [
    "conditions a language model on passages fetched from an external corpus",
    "train the retriever and the generator jointly",
    "improves exact match by 4.2 points",
    "Dense passage retrieval outperforms BM25",
    "The index can be swapped at test time",
    "Latency grows linearly with the number of retrieved passages",
]
FABRICATED = "the model achieves state-of-the-art results on every benchmark we tried"
NODE_IDS = {"n2", "n3", "n4"}


def ev(sentence: int, quote: str) -> EvidenceDraft:
    return EvidenceDraft(sentence=sentence, quote=quote)


def item(
    node_id: str, *evidence: EvidenceDraft, confidence: int = 3, summary: str = "Contributes."
) -> NodeEvidenceDraft:
    return NodeEvidenceDraft(
        node_id=node_id, summary=summary, evidence=list(evidence), confidence=confidence
    )


def verify(*items: NodeEvidenceDraft) -> Digest:
    return verify_digest(DigestDraft(relevant=list(items)), SENTENCES, "lewis2020rag", NODE_IDS)


def test_exact_quotes_are_kept() -> None:
    digest = verify(item("n2", ev(1, QUOTES[1]), ev(3, QUOTES[3]), confidence=4))
    assert digest == Digest(
        paper_key="lewis2020rag",
        nodes=(
            NodeDigest(
                node_id="n2",
                summary="Contributes.",
                evidence=(Evidence(QUOTES[1], 1), Evidence(QUOTES[3], 3)),
                confidence=4,
            ),
        ),
        dropped_quotes=0,
    )


def test_surrounding_quote_marks_and_whitespace_are_removed() -> None:
    digest = verify(item("n2", ev(4, f'  "{QUOTES[4]}" '), ev(5, f"“{QUOTES[5]}”")))
    assert digest.nodes[0].evidence == (Evidence(QUOTES[4], 4), Evidence(QUOTES[5], 5))


def test_summary_is_stripped() -> None:
    digest = verify(item("n2", ev(0, QUOTES[0]), summary="  Joint training.\n"))
    assert digest.nodes[0].summary == "Joint training."


def test_quote_with_small_differences_is_kept() -> None:
    quote = "dense passage retrieval  outperforms bm25 when in domain training data is available"
    digest = verify(item("n3", ev(3, quote)))
    # Stored as the paper words it, not as the model quoted it.
    assert digest.nodes[0].evidence == (Evidence(SENTENCES[3].rstrip("."), 3),)
    assert digest.dropped_quotes == 0


@pytest.mark.parametrize("wrong", [0, 5, 6, 99, -1])
def test_quote_with_wrong_sentence_index_is_relocated(wrong: int) -> None:
    digest = verify(item("n3", ev(wrong, QUOTES[2])))
    assert digest.nodes[0].evidence == (Evidence(QUOTES[2], 2),)
    assert digest.dropped_quotes == 0


def test_short_quote_with_wrong_sentence_index_is_dropped_not_relocated() -> None:
    # A quote of fewer than MIN_RELOCATED_WORDS words is not looked for elsewhere in the paper:
    # it would match some sentence by chance. With the right number it is kept.
    assert QUOTES[3].split() == ["Dense", "passage", "retrieval", "outperforms", "BM25"]
    digest = verify(
        item(
            "n3",
            ev(0, "retrieved passages"),  # in sentence 5
            ev(1, "Dense passage retrieval outperforms"),  # in sentence 3
            ev(5, "retrieved passages"),
            ev(0, QUOTES[3]),  # MIN_RELOCATED_WORDS words: relocated
        )
    )
    assert MIN_RELOCATED_WORDS == 5
    assert digest.nodes[0].evidence == (
        Evidence("retrieved passages", 5),
        Evidence(QUOTES[3], 3),
    )
    assert digest.dropped_quotes == 2


def test_fabricated_quote_is_dropped_and_counted() -> None:
    digest = verify(item("n2", ev(0, QUOTES[0]), ev(2, FABRICATED), ev(1, "")))
    assert digest.nodes[0].evidence == (Evidence(QUOTES[0], 0),)
    assert digest.dropped_quotes == 2


def test_quote_spread_over_two_sentences_is_dropped() -> None:
    spanning = f"{SENTENCES[4]} {SENTENCES[5]}"
    digest = verify(item("n2", ev(4, spanning), ev(0, QUOTES[0])))
    assert digest.nodes[0].evidence == (Evidence(QUOTES[0], 0),)
    assert digest.dropped_quotes == 1


def test_unknown_node_is_dropped_with_its_evidence_counted() -> None:
    digest = verify(
        item("n9", ev(0, QUOTES[0]), ev(1, QUOTES[1]), ev(2, FABRICATED)),
        item("n3", ev(3, QUOTES[3])),
    )
    assert [n.node_id for n in digest.nodes] == ["n3"]
    assert digest.dropped_quotes == 3


def test_duplicate_node_keeps_the_first_entry_and_counts_the_rest() -> None:
    digest = verify(
        item("n2", ev(0, QUOTES[0]), confidence=5, summary="First."),
        item("n3", ev(3, QUOTES[3])),
        item("n2", ev(1, QUOTES[1]), ev(2, QUOTES[2]), confidence=1, summary="Second."),
    )
    assert [n.node_id for n in digest.nodes] == ["n2", "n3"]
    first = digest.nodes[0]
    assert (first.summary, first.confidence) == ("First.", 5)
    assert first.evidence == (Evidence(QUOTES[0], 0),)
    assert digest.dropped_quotes == 2


def test_duplicate_node_after_an_entry_with_no_verified_evidence_is_not_lost() -> None:
    digest = verify(
        item("n2", ev(0, FABRICATED)),
        item("n2", ev(1, QUOTES[1])),
    )
    assert [n.node_id for n in digest.nodes] == ["n2"]
    assert digest.nodes[0].evidence == (Evidence(QUOTES[1], 1),)
    assert digest.dropped_quotes == 1


@pytest.mark.parametrize(("given", "kept"), [(-3, 1), (0, 1), (1, 1), (3, 3), (5, 5), (9, 5)])
def test_confidence_is_clamped_to_1_5(given: int, kept: int) -> None:
    digest = verify(item("n2", ev(0, QUOTES[0]), confidence=given))
    assert digest.nodes[0].confidence == kept


def test_evidence_per_node_is_capped() -> None:
    assert len(SENTENCES) > MAX_EVIDENCE_PER_NODE  # precondition
    digest = verify(item("n2", *(ev(i, q) for i, q in enumerate(QUOTES))))
    assert digest.nodes[0].evidence == tuple(
        Evidence(q, i) for i, q in enumerate(QUOTES[:MAX_EVIDENCE_PER_NODE])
    )
    assert digest.dropped_quotes == 0  # found in the paper: capped, not counted as missing


def test_fabricated_quotes_do_not_use_up_the_cap() -> None:
    evidence = [ev(0, FABRICATED)] * 3 + [ev(i, q) for i, q in enumerate(QUOTES)]
    digest = verify(item("n2", *evidence))
    assert len(digest.nodes[0].evidence) == MAX_EVIDENCE_PER_NODE
    assert digest.nodes[0].evidence[0] == Evidence(QUOTES[0], 0)
    assert digest.dropped_quotes == 3


def test_second_quote_from_the_same_sentence_is_not_repeated() -> None:
    digest = verify(
        item("n2", ev(3, "Dense passage retrieval"), ev(3, "outperforms BM25"), ev(0, QUOTES[0]))
    )
    assert digest.nodes[0].evidence == (
        Evidence("Dense passage retrieval", 3),
        Evidence(QUOTES[0], 0),
    )


def test_nodes_without_surviving_evidence_are_omitted() -> None:
    digest = verify(
        item("n2", ev(0, FABRICATED)),
        item("n3"),
        item("n4", ev(5, QUOTES[5])),
    )
    assert [n.node_id for n in digest.nodes] == ["n4"]
    assert digest.dropped_quotes == 1


def test_empty_draft_gives_empty_digest() -> None:
    assert verify() == Digest(paper_key="lewis2020rag", nodes=(), dropped_quotes=0)


def test_verified_digest_round_trips_through_json() -> None:
    digest = verify(item("n2", ev(0, QUOTES[0]), ev(9, QUOTES[4])), item("n9", ev(0, QUOTES[0])))
    assert Digest.from_json(digest.to_json()) == digest


def test_digest_targets_are_the_leaves() -> None:
    outline = Outline(
        "S",
        (
            OutlineNode("n1", "Parent", "P.", (OutlineNode("n2", "Child", "C."),)),
            OutlineNode("n3", "Leaf", "L."),
        ),
    )
    assert digest_targets(outline) == [
        {"id": "n2", "title": "Child", "description": "C."},
        {"id": "n3", "title": "Leaf", "description": "L."},
    ]


# --- write: evidence_by_node ------------------------------------------------------------------


def node_digest(node_id: str, confidence: int, quotes: int) -> NodeDigest:
    return NodeDigest(
        node_id=node_id,
        summary=f"On {node_id}.",
        evidence=tuple(Evidence(f"quote {i}", i) for i in range(quotes)),
        confidence=confidence,
    )


def test_evidence_by_node_orders_by_confidence_then_quotes_then_key() -> None:
    specs = {  # inserted in an order unrelated to the expected one
        "dd": [("n2", 3, 1)],
        "cc": [("n2", 3, 2), ("n3", 1, 1)],
        "bb": [("n2", 5, 1), ("n3", 2, 4)],
        "aa": [("n2", 3, 1)],
        "ee": [("n2", 3, 2)],
    }
    digests = {
        key: Digest(key, tuple(node_digest(*spec) for spec in nodes))
        for key, nodes in specs.items()
    }
    papers = {key: Paper(key=key, title=key.upper()) for key in specs}
    found = evidence_by_node(digests, papers)
    assert set(found) == {"n2", "n3"}
    assert [e.paper.key for e in found["n2"]] == ["bb", "cc", "ee", "aa", "dd"]
    assert [e.paper.key for e in found["n3"]] == ["bb", "cc"]
    top = found["n2"][0]
    assert top.paper is papers["bb"]
    assert top.digest is digests["bb"].nodes[0]


def test_evidence_by_node_of_no_digests_is_empty() -> None:
    assert evidence_by_node({}, {"aa": Paper(key="aa", title="A")}) == {}


# --- write: prune -----------------------------------------------------------------------------

TREE = Outline(
    title="A Survey",
    sections=(
        OutlineNode(
            "n1",
            "Retrievers",
            "R.",
            (OutlineNode("n2", "Sparse", "S."), OutlineNode("n3", "Dense", "D.")),
        ),
        OutlineNode("n4", "Training", "T.", (OutlineNode("n5", "Joint", "J."),)),
        OutlineNode("n6", "Evaluation", "E."),
        OutlineNode("n7", "Efficiency", "F."),
    ),
)


def test_prune_removes_leaves_without_evidence_and_emptied_parents() -> None:
    pruned, removed = prune(TREE, {"n3", "n7"})
    assert pruned == Outline(
        title="A Survey",
        sections=(
            OutlineNode("n1", "Retrievers", "R.", (OutlineNode("n3", "Dense", "D."),)),
            OutlineNode("n7", "Efficiency", "F."),
        ),
    )
    assert sorted(removed) == ["n2", "n4", "n5", "n6"]
    assert len(removed) == len(set(removed))


def test_prune_keeps_everything_with_evidence() -> None:
    pruned, removed = prune(TREE, {"n2", "n3", "n5", "n6", "n7"})
    assert pruned == TREE
    assert removed == []


def test_prune_ignores_evidence_on_parents() -> None:
    pruned, removed = prune(TREE, {"n1", "n4", "n6"})
    assert [node.id for node, _ in pruned.walk()] == ["n6"]
    assert sorted(removed) == ["n1", "n2", "n3", "n4", "n5", "n7"]


def test_prune_everything() -> None:
    pruned, removed = prune(TREE, set())
    assert pruned == Outline(title="A Survey", sections=())
    assert sorted(removed) == [f"n{i}" for i in range(1, 8)]


def test_prune_deeper_tree() -> None:
    deep = Outline(
        "S",
        (
            OutlineNode(
                "n1",
                "A",
                "",
                (
                    OutlineNode("n2", "B", "", (OutlineNode("n3", "C"),)),
                    OutlineNode("n4", "D", "", (OutlineNode("n5", "E"),)),
                ),
            ),
        ),
    )
    pruned, removed = prune(deep, {"n5"})
    assert [node.id for node, _ in pruned.walk()] == ["n1", "n4", "n5"]
    assert sorted(removed) == ["n2", "n3"]


# --- write: clean_section_text / parent_titles ------------------------------------------------


def test_clean_section_text_removes_a_leading_heading() -> None:
    text = "## Dense Retrieval\n\nDual encoders [@karpukhin2020dense] dominate.\n\nYet BM25 holds."
    assert clean_section_text(text) == (
        "Dual encoders [@karpukhin2020dense] dominate.\n\nYet BM25 holds."
    )


@pytest.mark.parametrize("hashes", ["#", "##", "###", "######"])
def test_clean_section_text_removes_headings_of_every_level(hashes: str) -> None:
    text = f"{hashes} Title\nBody sentence."
    assert clean_section_text(text) == "Body sentence."


def test_clean_section_text_removes_indented_and_trailing_headings() -> None:
    assert clean_section_text("  ### Sub\nBody.\n\n#### Trailing") == "Body."


def test_clean_section_text_keeps_hashes_that_are_not_headings() -> None:
    text = "C# and F# bindings exist (see issue #12).\n#hashtag is not a heading.\n\nEnd."
    assert clean_section_text(text) == text


@pytest.mark.parametrize(
    ("opening", "closing"),
    [("```", "```"), ("```markdown", "```"), ("````md", "````"), ("~~~", "~~~")],
)
def test_clean_section_text_unwraps_a_fenced_answer(opening: str, closing: str) -> None:
    text = f"\n{opening}\n## Dense\n\nDual encoders [@k2020x] win.\n\nBM25 holds.\n{closing}\n"
    assert clean_section_text(text) == "Dual encoders [@k2020x] win.\n\nBM25 holds."


def test_clean_section_text_unfences_a_partial_fence() -> None:
    # the fenced text stays, as prose the citation guard sees; an open fence cannot swallow
    # the rest of the survey
    text = "Intro [@a2020x].\n\n```json\nnot the whole answer [@b]\n```\n\nMore."
    assert clean_section_text(text) == "Intro [@a2020x].\n\nnot the whole answer [@b]\n\nMore."
    assert clean_section_text("Intro.\n\n~~~\nnever closed") == "Intro.\n\nnever closed"


def test_clean_section_text_strips_surrounding_whitespace() -> None:
    assert clean_section_text("\n\n  Body text.  \n\n") == "Body text."


def test_clean_section_text_keeps_paragraphs_apart_around_a_heading() -> None:
    text = "First paragraph [@a2020x].\n\n## Heading\nSecond paragraph [@b2021y]."
    assert clean_section_text(text) == "First paragraph [@a2020x].\n\nSecond paragraph [@b2021y]."


def test_clean_section_text_bare_hash_line_does_not_eat_the_next_line() -> None:
    text = "First paragraph.\n\n#\nSecond paragraph."
    assert "Second paragraph." in clean_section_text(text)


def test_parent_titles_maps_children_to_their_parent() -> None:
    assert parent_titles(TREE) == {
        "n2": "Retrievers",
        "n3": "Retrievers",
        "n5": "Training",
    }


def test_parent_titles_of_a_deep_tree_uses_the_direct_parent() -> None:
    deep = Outline(
        "S",
        (
            OutlineNode("n1", "A", "", (OutlineNode("n2", "B", "", (OutlineNode("n3", "C"),)),)),
            OutlineNode("n4", "D"),
        ),
    )
    assert parent_titles(deep) == {"n2": "A", "n3": "B"}


# --- digest: outline suggestions -------------------------------------------------------------


def suggestion(op: str, targets=(), parent: str = "", title: str = "", description: str = ""):
    from surveygen.stages.digest import SuggestionDraft

    return SuggestionDraft(
        rationale="because",
        op=op,
        targets=list(targets),
        parent=parent,
        title=title,
        description=description,
    )


def test_suggestions_that_fit_the_outline_are_kept():
    from surveygen.models import Suggestion
    from surveygen.stages.digest import verify_suggestions

    kept = verify_suggestions(
        [
            suggestion("add", parent="n1", title=" Hybrid  retrieval ", description="Compare."),
            suggestion("merge", targets=["n2", "n3"], title="Retrievers"),
            suggestion("rename", targets=["n4"], title="Benchmarks"),
        ],
        {"n1", "n2", "n3", "n4"},
    )
    assert kept[0] == Suggestion(
        "add", (), "n1", "Hybrid retrieval", "Compare.", rationale="because"
    )
    assert [s.op for s in kept] == ["add", "merge", "rename"]


@pytest.mark.parametrize(
    "bad",
    [
        suggestion("remove", targets=["n99"]),  # unknown node
        suggestion("add", parent="n99", title="X"),  # unknown parent
        suggestion("add", title="  "),  # nothing to add
        suggestion("merge", targets=["n2"]),  # merging needs two
        suggestion("rename", targets=["n2"]),  # no new name
        suggestion("move", targets=[]),  # nothing to move
    ],
)
def test_suggestions_that_cannot_apply_are_dropped(bad):
    from surveygen.stages.digest import verify_suggestions

    assert verify_suggestions([bad], {"n1", "n2", "n3", "n4"}) == ()


def test_at_most_three_suggestions_per_paper():
    from surveygen.stages.digest import MAX_SUGGESTIONS, verify_suggestions

    many = [suggestion("remove", targets=["n2"]) for _ in range(6)]
    assert len(verify_suggestions(many, {"n2"})) == MAX_SUGGESTIONS == 3
