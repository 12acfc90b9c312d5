"""The V2 core end to end, through the CLI against the scripted model over HTTP: refinement
with its run-directory log and call bounds, mapping digests to the refined outline, long
papers read with map/collapse/reduce, and writing from an edited outline.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakellm import FakeLLMServer, approx_tokens

from surveygen.cli import main
from surveygen.outline_md import parse_outline_md

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "data" / "sample_library.jsonl"
TOPIC = "retrieval-augmented language models"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def write_args(server: FakeLLMServer, out: Path, *extra: str, papers: Path = LIBRARY) -> list:
    return [
        "write",
        TOPIC,
        "--papers",
        str(papers),
        "--base-url",
        server.base_url,
        "--out",
        str(out),
        "--no-search",
        *extra,
    ]


def log_lines(out: Path) -> list[str]:
    return (out / "logs" / "calls.jsonl").read_text().splitlines()


def calls_by_prompt(out: Path, skip: int = 0) -> dict[str, int]:
    """Calls sent (not cache hits) per prompt name, after the first ``skip`` log lines."""
    counts: dict[str, int] = {}
    for line in log_lines(out)[skip:]:
        entry = json.loads(line)
        if not entry.get("cache_hit"):
            counts[entry["prompt"]] = counts.get(entry["prompt"], 0) + 1
    return counts


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


# --- refinement -----------------------------------------------------------------------------


def test_refinement_is_logged_bounded_and_monotonic(llm, workdir):
    out = workdir / "run"
    plan = run(*write_args(llm, out, "--dry-run"))
    assert plan.exit_code == 0, plan.stderr
    bound = int(re.search(r"^refine: at most (\d+) call", plan.stdout, re.M).group(1))
    assert re.search(r"^  layer 1: ", plan.stdout, re.M)

    result = run(*write_args(llm, out))
    assert result.exit_code == 0, result.stderr
    assert "[refine]" in result.stderr and "[map]" in result.stderr
    assert re.search(r"outline: score \d\.\d+ -> \d\.\d+ over \d layer", result.stderr)

    counts = calls_by_prompt(out)
    refine_calls = sum(n for name, n in counts.items() if name.startswith("refine_"))
    assert 0 < refine_calls <= bound

    refinement = report(out)["outline"]["refinement"]
    scores = [layer["best_after"] for layer in refinement["layers"]]
    assert scores == sorted(scores), "the best score went down between layers"
    assert refinement["score"]["score"] >= refinement["initial"]["score"]
    candidates = sorted((out / "state" / "refine").glob("layer-*/candidate-*.json"))
    assert candidates, "no candidate was logged"
    logged = json.loads(candidates[0].read_text())
    assert {"outline", "score"} <= set(logged)

    # The written outline is the refined one, and the evidence each paper's digest (the one
    # made again for it, else the first) places is on that outline's leaves.
    final = parse_outline_md((out / "outline.md").read_text())
    leaves = {leaf.id for leaf in final.leaves()}
    placed = set()
    for path in (out / "state" / "digests").glob("*.json"):
        mapped = out / "state" / "mapped" / path.name
        digest = json.loads((mapped if mapped.exists() else path).read_text())["item"]
        placed |= {n["node_id"] for n in digest["nodes"]}
    assert placed and placed <= leaves


def test_layers_zero_skips_refinement(llm, workdir):
    out = workdir / "run"
    result = run(*write_args(llm, out, "--layers", "0"))
    assert result.exit_code == 0, result.stderr
    counts = calls_by_prompt(out)
    assert not any(name.startswith("refine_") for name in counts)
    # Without refinement there is nothing to remap: every paper is digested once.
    assert counts["digest"] == 8


def test_a_rerun_reuses_every_answer(llm, workdir):
    out = workdir / "run"
    assert run(*write_args(llm, out)).exit_code == 0
    sent = len(llm.chat_requests())
    result = run(*write_args(llm, out))
    assert result.exit_code == 0, result.stderr
    assert len(llm.chat_requests()) == sent
    assert report(out)["llm"]["calls"] == 0


# --- long papers --------------------------------------------------------------------------------


def test_a_200k_token_paper_is_read_in_chunks_within_the_context(llm, workdir):
    sentences = [
        f"Section {i // 50} sentence {i} reports that dense retrievers index passages with "
        f"learned embeddings and that experiment {i} measured recall at k equal to {i % 97}."
        for i in range(6_000)
    ]
    text = " ".join(sentences)
    assert approx_tokens(text) >= 200_000
    library = workdir / "long.jsonl"
    rows = [json.loads(line) for line in LIBRARY.read_text().splitlines()][:3]
    rows.append(
        {
            "title": "A Very Long Study of Dense Retrieval",
            "year": 2024,
            "abstract": "A long study.",
            "text": text,
        }
    )
    library.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = workdir / "run"
    context = 8_192  # small, so the notes on the chunks must be collapsed before the reduce
    result = run(
        *write_args(llm, out, "--context-tokens", str(context), "--layers", "0", papers=library)
    )
    assert result.exit_code == 0, result.stderr

    counts = calls_by_prompt(out)
    assert counts["digest_chunk"] >= 50 and counts["digest_collapse"] >= 3  # collapses + reduce
    assert report(out)["papers"]["read_in_chunks"] == 1
    output = 4096  # max_output_tokens, set aside for the answer
    for request in llm.chat_requests():
        assert approx_tokens(request.prompt_text) <= context - output
    long_digest = next(
        json.loads(p.read_text())["item"]
        for p in (out / "state" / "digests").glob("*.json")
        if json.loads(p.read_text())["item"]["chunks"] > 1
    )
    quotes = [e for n in long_digest["nodes"] for e in n["evidence"]]
    assert quotes
    for evidence in quotes:  # each stored quote is the paper's own words at its sentence
        assert evidence["quote"] in sentences[evidence["sentence"]]


# --- the editable outline ------------------------------------------------------------------------


def _edit(outline_md: str) -> tuple[str, str, str]:
    """Rename the first leaf, delete the last top-level section, add a new heading."""
    outline = parse_outline_md(outline_md)
    renamed = outline.leaves()[0]
    text = outline_md.replace(
        f" {renamed.title} <!-- id: {renamed.id} -->",
        f" Renamed By The User <!-- id: {renamed.id} -->",
    )
    last = outline.sections[-1]
    start = text.index(f" {last.title} <!-- id: {last.id} -->")
    start = text.rfind("\n", 0, start) + 1
    text = text[:start].rstrip() + "\n"
    text += "\n## Added By The User\n\nExtract what the papers say about retrieval cost.\n"
    return text, renamed.id, last.id


def test_writing_from_an_edited_outline(llm, workdir):
    out = workdir / "run"
    assert run(*write_args(llm, out)).exit_code == 0
    edited, renamed_id, deleted_id = _edit((out / "outline.md").read_text())
    mine = workdir / "my-outline.md"
    mine.write_text(edited)
    before = len(llm.chat_requests())
    logged = len(log_lines(out))

    result = run(*write_args(llm, out, "--outline", str(mine)))
    assert result.exit_code == 0, result.stderr
    assert "outline: yours (--outline)" in result.stderr
    counts = calls_by_prompt(out, skip=logged)
    assert not any(name.startswith(("skeleton", "refine_")) for name in counts)
    # Only papers whose nodes vanished (or that had no evidence, now that a section was
    # added) are digested again: fewer than the whole library.
    fresh = llm.chat_requests()[before:]
    digests = sum(1 for r in fresh if "split into numbered sentences" in r.prompt_text)
    assert digests == report(out)["papers"]["redigested_for_final_outline"] < 8

    survey = (out / "survey.md").read_text()
    written = (out / "outline.md").read_text()
    final = parse_outline_md(written)
    assert deleted_id not in {node.id for node, _ in final.walk()}
    # outline.md keeps the user's plan: the renamed section under its old id, the new one.
    assert f"Renamed By The User <!-- id: {renamed_id} -->" in written
    added = next(node for node, _ in final.walk() if node.title == "Added By The User")
    # The new heading got an id no earlier section had, and the papers most similar to it
    # were read again, so it has evidence and is written.
    assert added.id not in {deleted_id, renamed_id}
    assert "## Added By The User" in survey
    assert report(out)["outline"]["source"] == "user"


def test_an_outline_on_a_fresh_folder_digests_against_it(llm, workdir):
    mine = workdir / "outline.md"
    mine.write_text(
        "# My Survey\n\n## Dense Retrievers\n\nExtract retriever designs.\n\n"
        "## Generation With Evidence\n\nExtract how passages are used.\n"
    )
    out = workdir / "run"
    result = run(*write_args(llm, out, "--outline", str(mine)))
    assert result.exit_code == 0, result.stderr
    survey = (out / "survey.md").read_text()
    assert survey.startswith("# My Survey\n")
    counts = calls_by_prompt(out)
    assert counts["digest"] == 8 and "skeleton" not in counts


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("# T\n\n#### Too deep\n", "line 3"),
        ("no title\n", "line 1"),
        ("# T\n\n## A <!-- id: n1 -->\n\n## B <!-- id: n1 -->\n", "line 5"),
    ],
)
def test_a_malformed_outline_is_a_usage_error_naming_the_line(llm, workdir, text, needle):
    mine = workdir / "bad.md"
    mine.write_text(text)
    result = run(*write_args(llm, workdir / "run", "--outline", str(mine)))
    assert result.exit_code == 2
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert not llm.chat_requests()


def test_a_missing_outline_file_is_a_usage_error(llm, workdir):
    result = run(*write_args(llm, workdir / "run", "--outline", str(workdir / "nope.md")))
    assert result.exit_code == 2 and "--outline" in result.stderr


# --- damaged state ----------------------------------------------------------------------------


def test_resume_over_damaged_state_redoes_that_work_with_a_warning(llm, workdir):
    out = workdir / "run"
    assert run(*write_args(llm, out)).exit_code == 0
    digests = sorted((out / "state" / "digests").glob("*.json"))
    record = json.loads(digests[0].read_text())
    del record["item"]["paper_key"]  # the wrong shape
    digests[0].write_text(json.dumps(record))
    digests[1].write_text(digests[1].read_text()[:40])  # cut short
    (out / "state" / "refine" / "result.json").write_text('{"version": 1, "outline": {}}')
    sections = sorted((out / "state" / "sections").glob("*.json"))
    sections[0].write_text("[]")

    result = run(*write_args(llm, out, "--resume"))
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    for path in (digests[0], digests[1], sections[0]):
        assert f"{path.relative_to(out)} is damaged" in result.stderr
    assert json.loads(digests[1].read_text())["item"]["paper_key"]  # made again
    assert (out / "survey.md").read_text().startswith("# ")


def test_an_outline_rerun_with_more_papers_digests_only_the_new_ones(llm, workdir):
    out = workdir / "run"
    rows = LIBRARY.read_text().splitlines()
    small = workdir / "small.jsonl"
    small.write_text("\n".join(rows[:5]) + "\n")
    assert run(*write_args(llm, out, papers=small)).exit_code == 0
    mine = workdir / "mine.md"
    mine.write_text((out / "outline.md").read_text())
    logged = len(log_lines(out))

    # The whole library: the five papers' ranking scores change, their digests stay valid.
    result = run(*write_args(llm, out, "--outline", str(mine)))
    assert result.exit_code == 0, result.stderr
    assert calls_by_prompt(out, skip=logged).get("digest") == 3
    # Sections whose evidence changed are written again, so the new papers are cited.
    new_titles = [json.loads(row)["title"] for row in rows[5:]]
    references = (out / "survey.md").read_text().split("## References", 1)[1]
    assert any(title in references for title in new_titles)
