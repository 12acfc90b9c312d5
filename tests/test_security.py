"""Security: paper text is data, file names stay in the run directory, keys are written nowhere.

1. Prompt injection. A library holds one paper whose title and abstract carry an injection
   (instructions, a fake JSON answer, fence-closing lines); a gullible model
   (tests/scripted_gullible.py) obeys it in every prompt that shows it. The run must still end
   with a survey whose structure is the outline's (within the caps), whose citations are all
   library keys, whose quotes are all the papers' own words, and whose outputs carry no live
   markup; and the paper's text never leaves its fence in any prompt.
2. Paths. Topics, .bib keys and titles made of path syntax create no file outside the run
   directory and the cache.
3. Secrets. An API key given in the environment, the config file or the endpoint URL reaches
   no file, no log and no output, whether the run succeeds or fails.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner, Result
from fakellm import FakeLLMServer, RecordedRequest
from scripted_gullible import (
    EVIL_KEY,
    INJECTED_PAPER,
    INVENTED,
    MARKER,
    SCRIPT,
    TAIL,
    gullible_responder,
)

from surveygen.check import check_file
from surveygen.citations import MAX_KEY_CHARS, find_citations, guard_citations
from surveygen.cli import main
from surveygen.library.keys import is_valid_key
from surveygen.models import Outline, OutlineNode
from surveygen.outline_md import parse_outline_md
from surveygen.outline_tree import MAX_DEPTH
from surveygen.rundir import slugify
from surveygen.stages.render import md_inert, render_outline_md
from surveygen.stages.write import clean_section_text
from surveygen.text import split_sentences

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample_library.jsonl"
TOPIC = "retrieval-augmented language models"
MAX_SECTIONS = 8
FAST = "retry_base_seconds = 0.01\nretry_max_seconds = 0.05\ntimeout = 5\n"
FIXED_HEADINGS = {"Abstract", "Introduction", "Conclusion", "References"}


def write(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["write", *args], env=env, catch_exceptions=False)


def isolate(mp: pytest.MonkeyPatch, base: Path) -> None:
    """What conftest's autouse fixture does for a test, for a module-scoped run (which starts
    before any function-scoped fixture): no user keys, endpoints, proxies, cache or config."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "SURVEYGEN_")) or name.lower() in {
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
        }:
            mp.delenv(name, raising=False)
    mp.setenv("SURVEYGEN_ARXIV_URL", "http://127.0.0.1:9/api/query")
    mp.setenv("SURVEYGEN_ARXIV_DELAY", "0")
    for var, sub in (("XDG_CACHE_HOME", "cache"), ("XDG_CONFIG_HOME", "config")):
        (base / sub).mkdir()
        mp.setenv(var, str(base / sub))


# ============================================================================ prompt injection


@dataclass
class InjectedRun:
    out: Path
    result: Result
    requests: list[RecordedRequest]
    papers: dict[str, dict[str, Any]]  # papers.jsonl rows by key

    def read(self, name: str) -> str:
        return (self.out / name).read_text(encoding="utf-8")

    def paper_text(self, key: str) -> str:
        """What the paper says, as the digest numbered it: its sentences, one space apart."""
        paper = self.papers[key]
        return " ".join(split_sentences(paper.get("text") or paper["abstract"] or paper["title"]))

    def final_outline(self) -> Outline:
        return Outline.from_json(json.loads(self.read("state/refine/result.json"))["outline"])


@pytest.fixture(scope="module")
def injected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InjectedRun]:
    """One run over the sample library plus the injected paper, with the gullible model."""
    base = tmp_path_factory.mktemp("injected")
    library = base / "library.jsonl"
    library.write_text(SAMPLE.read_text() + json.dumps(INJECTED_PAPER) + "\n")
    # verify = "llm": the gullible entailment judge calls every claim supported
    (base / "surveygen.toml").write_text(FAST + f'max_sections = {MAX_SECTIONS}\nverify = "llm"\n')
    with pytest.MonkeyPatch.context() as mp, FakeLLMServer(gullible_responder) as server:
        isolate(mp, base)
        mp.chdir(base)
        out = base / "run"
        result = write(
            TOPIC,
            "--papers",
            str(library),
            "--no-search",
            "--base-url",
            server.base_url,
            "--out",
            str(out),
            "--format",
            "md,tex,html,bib",
        )
        requests = server.chat_requests()
    rows = [json.loads(line) for line in (out / "papers.jsonl").read_text().splitlines()]
    yield InjectedRun(out, result, requests, {row["key"]: row for row in rows})


def injected_key(run: InjectedRun) -> str:
    return next(key for key, row in run.papers.items() if MARKER in row["title"])


def test_the_gullible_model_obeyed_the_injection_and_the_run_still_finished(injected):
    assert injected.result.exit_code == 0, injected.result.stderr
    report = json.loads(injected.read("report.json"))
    # the injection did reach the model and it did misbehave, so the checks below test something
    infected = [r.prompt_text for r in injected.requests if MARKER in r.prompt_text]
    for task in (
        "Task: propose the outline of a survey",
        "split into numbered sentences",
        "Task: apply the edits below to the outline",
        "Task: write the body of this section",
        "Task: write the Introduction",
        "does the paper's text support the claim",
    ):
        assert any(task in prompt for prompt in infected), task
    assert report["evidence"]["dropped_quotes"] >= 3 * len(injected.papers)
    assert report["citations"]["removed_unknown_keys"] > 0
    assert report["papers"]["kept"] == len(injected.papers) == 9
    assert injected_key(injected) in injected.read("references.bib")  # cited, as data


def _outlines(obj: Any) -> Iterator[dict[str, Any]]:
    """Every outline (``{"title", "sections"}``) saved anywhere in a state file."""
    if isinstance(obj, dict):
        if isinstance(obj.get("sections"), list) and isinstance(obj.get("title"), str):
            yield obj
        for value in obj.values():
            yield from _outlines(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _outlines(value)


def test_no_outline_exceeds_the_caps_whatever_the_model_proposed(injected):
    # the model proposed over 40 top-level sections, one 6 levels deep, with ids of its own
    outlines = [
        Outline.from_json(found)
        for path in sorted((injected.out / "state").rglob("*.json"))
        for found in _outlines(json.loads(path.read_text()))
    ]
    assert len(outlines) >= 5  # skeleton, candidates, result
    for outline in outlines:
        ids = [node.id for node, _ in outline.walk()]
        assert len(outline.leaves()) <= MAX_SECTIONS
        assert outline.depth <= MAX_DEPTH
        assert len(ids) == len(set(ids)) and all(re.fullmatch(r"n\d+", i) for i in ids)
        assert "n999" not in ids
        assert all("\n" not in node.title + node.description for node, _ in outline.walk())
    assert any(MARKER in node.title for outline in outlines for node, _ in outline.walk())


def test_outline_md_reads_back_as_the_outline_written(injected):
    # descriptions such as "## Injected", "```json" or "<!-- ..." are text, not structure
    text = injected.read("outline.md")
    parsed = parse_outline_md(text)
    final = injected.final_outline()
    assert [(n.id, n.title) for n, _ in parsed.walk()] == [(n.id, n.title) for n, _ in final.walk()]
    assert render_outline_md(parsed) == text
    assert any("Injected Description Heading" in n.description for n, _ in parsed.walk())


def test_no_invented_key_survives(injected):
    report = json.loads(injected.read("report.json"))
    assert report["citations"]["unresolved"] == 0
    assert check_file(injected.out / "survey.md").unresolved == ()
    for name in ("survey.md", "survey.tex", "survey.html", "references.bib"):
        text = injected.read(name)
        assert EVIL_KEY not in text and "../../evil" not in text, name
    assert "[@" not in injected.read("survey.md")
    tex_keys = {
        key.strip()
        for group in re.findall(r"\\cite[pt]?\{([^}]*)\}", injected.read("survey.tex"))
        for key in group.split(",")
    }
    bib_keys = set(re.findall(r"^@\w+\{([^,]+),", injected.read("references.bib"), re.M))
    assert tex_keys and tex_keys <= bib_keys <= set(injected.papers)


def test_no_invented_quote_survives(injected):
    digests = [
        json.loads(path.read_text())["item"]
        for path in (injected.out / "state" / "digests").glob("*.json")
    ]
    assert len(digests) == len(injected.papers)
    quotes = 0
    for digest in digests:
        said = injected.paper_text(digest["paper_key"])
        assert len(digest["suggestions"]) <= 3
        for node in digest["nodes"]:
            assert 1 <= node["confidence"] <= 5
            for evidence in node["evidence"]:
                assert " ".join(evidence["quote"].split()) in said, evidence
                quotes += 1
    assert quotes >= len(digests)
    for path in injected.out.rglob("*"):
        if path.is_file():
            assert INVENTED.encode() not in path.read_bytes(), path
    # hover quotes in the HTML are the papers' words (or a cited paper's title)
    page = _parse_html(injected.read("survey.html"))
    said = [injected.paper_text(k) + " " + row["title"] for k, row in injected.papers.items()]
    hovers = [a.get("title") for tag, a in page.tags if tag == "a" and a.get("class") == "cite"]
    hovers = [h for h in hovers if h]
    assert hovers
    for hover in hovers:
        assert any(" ".join(hover.split()) in text for text in said), hover


@dataclass
class _Page:
    tags: list[tuple[str, dict[str, str]]]
    data: str
    headings: list[tuple[str, str]]


def _parse_html(html: str) -> _Page:
    class Parser(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.page = _Page([], "", [])
            self._heading: list[str] | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.page.tags.append((tag, {k: v or "" for k, v in attrs}))
            if re.fullmatch(r"h[1-6]", tag):
                self._heading = [tag]

        def handle_endtag(self, tag: str) -> None:
            if self._heading is not None and tag == self._heading[0]:
                self.page.headings.append((tag, " ".join("".join(self._heading[1:]).split())))
                self._heading = None

        def handle_data(self, data: str) -> None:
            self.page.data += data
            if self._heading is not None:
                self._heading.append(data)

    parser = Parser()
    parser.feed(html)
    parser.close()
    return parser.page


def test_the_html_runs_nothing_the_papers_or_the_model_wrote(injected):
    page = _parse_html(injected.read("survey.html"))
    names = {tag for tag, _ in page.tags}
    assert not names & {"script", "iframe", "img", "object", "embed", "form", "base"}
    for tag, attrs in page.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for attr in ("href", "src", "action"):
            if attr in attrs:
                assert attrs[attr].startswith(("#", "http://", "https://")), (tag, attrs)
    # the payload did reach the page: as text
    assert SCRIPT in page.data and "<iframe" in page.data
    # and headings are the outline's: none comes from the model's text
    allowed = {n.title for n, _ in injected.final_outline().walk()} | FIXED_HEADINGS
    title, *headings = page.headings
    assert title[0] == "h1" and MARKER in title[1]
    assert headings and all(text in allowed for _, text in headings), headings


def test_the_latex_runs_no_command_the_papers_or_the_model_wrote(injected):
    tex = injected.read("survey.tex")
    commands = r"\\(?:input|include|write18|immediate|openin|openout|read|catcode|def)(?![A-Za-z])"
    assert not re.search(commands, tex)
    assert tex.count(r"\begin{document}") == tex.count(r"\end{document}") == 1
    assert tex.rstrip().endswith(r"\end{document}")
    assert r"\textbackslash{}input\{/etc/passwd\}" in tex  # the payload, as text
    assert not re.search(commands, injected.read("references.bib"))


def _atx_headings(markdown: str) -> list[tuple[int, str]]:
    return [
        (len(m.group(1)), m.group(2).strip())
        for m in re.finditer(r"^(#{1,6})[ \t]+(.*)$", markdown, re.M)
    ]


def test_markdown_headings_in_section_text_make_no_section(injected):
    md = injected.read("survey.md")
    headings = _atx_headings(md)
    assert headings[0][0] == 1 and MARKER in headings[0][1]  # the survey's title
    body = headings[1 : [t for _, t in headings].index("References")]
    # check counts setext headings too: equal counts mean the model added none of either kind
    sections = [(level, text) for level, text in body if text != "Abstract"]
    assert check_file(injected.out / "survey.md").sections == len(sections) > 2
    allowed = {md_inert(n.title) for n, _ in injected.final_outline().walk()} | FIXED_HEADINGS
    assert all(text in allowed for _, text in body), body
    assert all(level <= MAX_DEPTH + 1 for level, _ in body)
    # no live HTML (an open "<!--" would hide the rest), no code fence, no raw LaTeX for pandoc
    assert not re.search(r"(?<!\\)<(?!https?://)[A-Za-z/!?]", md)
    assert "```" not in md and "~~~" not in md
    assert not re.search(r"(?<!\\)\\input", md)
    assert r"\<script>" in md and r"\<!--" in md  # the payload, inert


def _fenced_lines(prompt: str) -> Iterator[tuple[bool, str]]:
    """(inside a <<<label ... >>> block, line) for every line of a prompt."""
    inside = False
    for line in prompt.split("\n"):
        if not inside and line.startswith("<<<"):
            inside = True
            yield True, line
        elif inside and line == ">>>":
            inside = False
            yield True, line
        else:
            yield inside, line


def test_paper_text_never_leaves_its_fence_in_a_prompt(injected):
    shown = 0
    for request in injected.requests:
        messages = request.body["messages"]
        system = [m["content"] for m in messages if m["role"] == "system"]
        assert all(MARKER not in text and TAIL not in text for text in system)
        lines = list(_fenced_lines(request.prompt_text))
        assert not any(line.startswith("<<<system") for _, line in lines)
        opened = sum(line.startswith("<<<") for inside, line in lines if inside)
        closed = sum(line == ">>>" for inside, line in lines if inside)
        assert opened == closed, request.prompt_text
        for inside, line in lines:
            if TAIL in line:
                shown += 1
                assert inside, line
    # the skeleton prompt shows the abstract with its line breaks, the digest its sentences
    assert shown >= 2


# --------------------------------------------------------------------------- the fixes, unit


@pytest.mark.parametrize(
    "heading",
    [
        "Injected\n========",
        "Injected\n---",
        "Injected\n-",
        "> # Injected",
        ">## Injected",
        "- # Injected",
        "1. ### Injected",
    ],
)
def test_section_text_loses_setext_and_nested_headings(heading: str) -> None:
    cleaned = clean_section_text(f"Body [@a2020x].\n\n{heading}\n\nMore.")
    assert "#" not in cleaned and "==" not in cleaned and "\n-" not in cleaned
    assert cleaned.startswith("Body [@a2020x].") and cleaned.endswith("More.")


def test_section_text_shows_the_guard_what_code_and_comments_hid() -> None:
    text = "A [@a].\n\n```\n[@ghost]\n```\n\n`[@ghost]` and <!-- [@ghost] -->.\n\n~~~\nopen"
    cleaned = clean_section_text(text)
    assert guard_citations(cleaned, {"a"}).removed == ("ghost",)
    assert "`" not in cleaned and "<!--" not in cleaned and "~~~" not in cleaned


@pytest.mark.parametrize(
    ("text", "guarded", "removed"),
    [
        ("See [@a/b].", "See.", ("a/b",)),
        ("See [@../../evil; @a].", "See [@a].", ("../../evil",)),
        ("See [@a, p. 5].", "See [@a].", ()),
        ("See [@-a] and [@.].", "See and.", ("-a", ".")),
        ("See [@" + "k" * (MAX_KEY_CHARS + 1) + "].", "See.", ("k" * (MAX_KEY_CHARS + 1),)),
    ],
)
def test_malformed_citation_groups_are_guarded_never_left_as_text(text, guarded, removed):
    # even a "known" key is not kept unless the citation parser can read it back whole
    result = guard_citations(text, {"a", "a/b", "k" * (MAX_KEY_CHARS + 1)})
    assert (result.text, result.removed) == (guarded, removed)
    assert find_citations(text) == []  # a malformed group is not a citation of anything


def test_citation_keys_are_short_enough_to_name_a_file() -> None:
    assert is_valid_key("k" * MAX_KEY_CHARS)
    assert not is_valid_key("k" * (MAX_KEY_CHARS + 1))


@pytest.mark.parametrize(
    ("text", "inert"),
    [
        ("<script>alert(1)</script>", r"\<script>alert(1)\</script>"),
        ("<!-- hides the rest", r"\<!-- hides the rest"),
        ("<h1>Injected</h1>", r"\<h1>Injected\</h1>"),
        ("p < 0.05, a \\<b>", "p < 0.05, a \\<b>"),
        ("[x](javascript:alert(1)) ![pixel](https://t.example/p.png)", "x pixel"),
        ("[x](https://ok.example/a)", "[x](https://ok.example/a)"),
        (r"\input{/etc/passwd}", r"\\input{/etc/passwd}"),
        (r"$\input{/etc/passwd} + \alpha$", r"$\backslash{}input{/etc/passwd} + \alpha$"),
        ("`<b>` stays code", "`<b>` stays code"),
        ("[a](javascript:alert(1)//](http://x))", "a"),
        ("see [x][r]\n[r]: javascript:alert(1)", "see [x][r]\n\\[r]: javascript:alert(1)"),
        ("`\\input{/etc/passwd}`{=latex}", "`\\input{/etc/passwd}`\\{=latex}"),
        (r"$\global\newcommand ^^5c$", r"$\backslash{}global\backslash{}newcommand ^{}^5c$"),
        ("```{=latex}\n\\input{x}\n```", "\\\\input{x}\n"),
    ],
)
def test_markdown_output_is_inert(text: str, inert: str) -> None:
    assert md_inert(text) == inert
    assert md_inert(inert) == inert


@pytest.mark.parametrize(
    "description",
    ["## Injected", "```json {}", "~~~", "<!-- hides the sections after it", "ok\n\n# Title"],
)
def test_a_description_cannot_change_the_structure_of_outline_md(description: str) -> None:
    outline = Outline(
        "T", (OutlineNode("n1", "A", description, ()), OutlineNode("n2", "B", "b", ()))
    )
    text = render_outline_md(outline)
    parsed = parse_outline_md(text)
    assert [(n.id, n.title) for n, _ in parsed.walk()] == [("n1", "A"), ("n2", "B")]
    assert render_outline_md(parsed) == text


# ============================================================================ paths


def _tree(root: Path) -> dict[Path, float]:
    return {p: p.lstat().st_mtime for p in root.rglob("*")}


def _bib(keys: list[str], titles: list[str]) -> str:
    abstract = (
        "Dense retrieval with a dual encoder improves open-domain question answering over BM25. "
        "The retriever is trained with in-batch negatives."
    )
    return "".join(
        f"@article{{{key},\n  title = {{{title}}},\n  author = {{Doe{i}, Jane}},\n"
        f"  year = {{2020}},\n  abstract = {{{abstract} Paper {i} studies retrieval.}}\n}}\n\n"
        for i, (key, title) in enumerate(zip(keys, titles, strict=True))
    )


HOSTILE_KEYS = ["../../evil", "a/b", "..", "CON", "k" * 300, "nul", "aux.txt", "x:y", "c\\d"]
HOSTILE_TITLES = [
    "Retrieval ../../../etc/passwd Models",
    "Dense / Sparse Retrieval",
    "..",
    "CON: Retrieval for QA",
    "/tmp/evil/Retrieval",
    "Nul Retrieval",
    "Aux Retrieval",
    "Colon Retrieval",
    "Backslash Retrieval",
]


@pytest.mark.parametrize(
    "topic", ["../../../etc/passwd", "/tmp/x", "..", "../../..//evil", "~/x/../y", "C:\\x"]
)
def test_no_file_is_written_outside_the_run_directory_and_the_cache(
    llm, tmp_path, monkeypatch, topic
):
    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    (work / "surveygen.toml").write_text(FAST)
    (work / "lib.bib").write_text(_bib(HOSTILE_KEYS, HOSTILE_TITLES))
    cache = Path(os.environ["XDG_CACHE_HOME"])
    watched = [tmp_path, cache.parent]  # the test's tree, and the XDG tree beside it
    outside = [Path("/tmp/x"), Path("/tmp/evil"), Path("/etc/passwd"), Path.home() / "x"]
    before = {root: _tree(root) for root in watched}
    existed = {p: p.exists() and p.lstat().st_mtime for p in outside}

    result = write(topic, "--papers", "lib.bib", "--no-search", "--base-url", llm.base_url)
    if topic == "..":  # no word to name a survey by: refused before anything is written
        assert result.exit_code == 2 and "no letters or digits" in result.stderr
        assert {root: _tree(root) for root in watched} == before
        return
    assert result.exit_code == 0, result.stderr

    run = work / "surveys" / slugify(topic)
    assert run.is_dir() and run.parent == work / "surveys"
    for line in result.stdout.split():
        assert Path(line).resolve().is_relative_to(run.resolve()), line
    for root in watched:
        after = _tree(root)
        changed = [p for p, mtime in after.items() if before[root].get(p) != mtime]
        for path in changed:
            inside = path.is_relative_to(run) or path.is_relative_to(cache)
            ancestor = path in run.parents or path in cache.parents
            assert inside or ancestor or path == work / "surveys", path
    assert {p: p.exists() and p.lstat().st_mtime for p in outside} == existed
    # keys with path syntax were replaced; each state file is a plain name in its folder
    keys = [json.loads(line)["key"] for line in (run / "papers.jsonl").read_text().splitlines()]
    assert len(keys) == len(HOSTILE_KEYS)
    assert all(is_valid_key(k) and len(k) <= MAX_KEY_CHARS for k in keys)
    assert not set(keys) & {"../../evil", "a/b", "..", "c\\d", "k" * 300}
    assert "CON" in keys  # a valid key is kept (a name Windows reserves: see rundir.state_name)
    for path in (run / "state" / "digests").iterdir():
        assert path.parent == run / "state" / "digests" and len(path.name.encode()) <= 255


def test_a_key_too_long_for_a_file_name_is_replaced_not_fatal(llm, workdir):
    (workdir / "lib.bib").write_text(_bib(["k" * 300, "ok2020"], ["Long Key Retrieval", "Ok"]))
    out = workdir / "run"
    result = write(
        TOPIC, "--papers", "lib.bib", "--no-search", "--base-url", llm.base_url, "--out", str(out)
    )
    assert result.exit_code == 0, result.stderr
    assert "is not a valid citation key" in result.stderr
    keys = [json.loads(line)["key"] for line in (out / "papers.jsonl").read_text().splitlines()]
    assert "ok2020" in keys and all(len(k) <= MAX_KEY_CHARS for k in keys)


# ============================================================================ secrets

SECRET = "sk-proj-SECRET-4242-must-never-be-written"


def _forms(secret: str) -> list[str]:
    """The secret as it may be leaked: itself, URL-quoted, and inside a Basic auth header."""
    return [
        secret,
        quote(secret, safe=""),
        base64.b64encode(f"user:{secret}".encode()).decode(),
    ]


def assert_written_nowhere(secret: str, result: Result, *dirs: Path) -> None:
    files = [p for d in dirs for p in d.rglob("*") if p.is_file()]
    assert files  # there is something to scan: run state, logs, the cache
    for form in _forms(secret):
        assert form not in result.stdout, form
        assert form not in result.stderr, form
        for path in files:
            assert form.encode() not in path.read_bytes(), (path, form)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cache_dir() -> Path:
    return Path(os.environ["XDG_CACHE_HOME"])


def run_args(out: Path, base_url: str, *extra: str) -> list[str]:
    args = [TOPIC, "--papers", str(SAMPLE), "--no-search", "--out", str(out)]
    return [*args, "--base-url", base_url, *extra]


def test_a_key_in_the_config_file_is_used_and_written_nowhere(llm, workdir, cache_dir):
    (workdir / "surveygen.toml").write_text(FAST + f'api_key = "{SECRET}"\n')
    llm.require_api_key = SECRET
    out = workdir / "run"
    result = write(*run_args(out, llm.base_url))
    assert result.exit_code == 0, result.stderr
    assert llm.chat_requests()[0].headers["authorization"] == f"Bearer {SECRET}"
    assert (out / "report.json").exists()
    assert_written_nowhere(SECRET, result, out, cache_dir)


def test_a_password_in_the_base_url_is_used_and_written_nowhere(llm, workdir, cache_dir):
    out = workdir / "run"
    url = llm.base_url.replace("http://", f"http://user:{SECRET}@")
    result = write(*run_args(out, url))
    assert result.exit_code == 0, result.stderr
    basic = base64.b64encode(f"user:{SECRET}".encode()).decode()
    assert llm.chat_requests()[0].headers["authorization"] == f"Basic {basic}"
    settings = json.loads((out / "report.json").read_text())["settings"]
    assert settings["base_url"] == llm.base_url.replace("http://", "http://***@")
    assert_written_nowhere(SECRET, result, out, cache_dir)


def _raise_with_the_key(body: dict) -> str:
    raise RuntimeError(f"upstream refused key {SECRET}")  # fakellm answers 500 with this text


@pytest.mark.parametrize(
    "case",
    [
        "401 echoing a config-file key",
        "500 whose body holds the key",
        "200 whose unreadable body holds the key",
        "connection refused, key in the URL's password",
        "connection refused, key in the URL's query",
        "connection refused, key in the environment",
        "budget stop",
    ],
)
def test_a_failing_run_writes_the_key_nowhere(llm, workdir, cache_dir, case):
    out = workdir / "run"
    env: dict[str, str] = {}
    extra: list[str] = []
    base_url = llm.base_url
    port = closed_port()
    if case == "401 echoing a config-file key":
        (workdir / "surveygen.toml").write_text(FAST + f'api_key = "{SECRET}"\n')
        llm.inject("echo_auth")
        needle = "refused the API key"
    elif case == "500 whose body holds the key":
        env["OPENAI_API_KEY"] = SECRET
        llm.responder = _raise_with_the_key
        needle = "upstream refused key ***"  # the message is shown, the key is not
    elif case == "200 whose unreadable body holds the key":
        env["OPENAI_API_KEY"] = SECRET
        llm.inject(
            "malformed_body", times=10, body=f"<html>{SECRET}</html>", content_type="text/html"
        )
        needle = "unreadable response"
    elif case == "connection refused, key in the URL's password":
        base_url = f"http://user:{SECRET}@127.0.0.1:{port}/v1"
        needle = "connection error"
    elif case == "connection refused, key in the URL's query":
        base_url = f"http://127.0.0.1:{port}/v1?api-key={SECRET}"
        needle = "connection error"
    elif case == "connection refused, key in the environment":
        env["OPENAI_API_KEY"] = SECRET
        base_url = f"http://127.0.0.1:{port}/v1"
        needle = "connection error"
    else:
        (workdir / "surveygen.toml").write_text(
            FAST + '[prices."fake-model"]\ninput = 1.0\noutput = 1.0\n'
        )
        env["OPENAI_API_KEY"] = SECRET
        extra = ["--model", "fake-model", "--budget", "0.01"]
        needle = "budget"
    result = write(*run_args(out, base_url, *extra), env=env)
    assert result.exit_code == 1, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert_written_nowhere(SECRET, result, out, cache_dir)


def test_a_server_echoing_basic_auth_from_the_url_does_not_leak_it(llm, workdir, cache_dir):
    llm.inject("echo_auth")
    out = workdir / "run"
    result = write(*run_args(out, llm.base_url.replace("http://", f"http://user:{SECRET}@")))
    assert result.exit_code == 1
    assert_written_nowhere(SECRET, result, out, cache_dir)


def test_a_rejected_base_url_is_not_echoed_with_its_password(workdir):
    result = write(*run_args(workdir / "run", f"ftp://user:{SECRET}@127.0.0.1/v1"))
    assert result.exit_code == 2 and "--base-url" in result.stderr
    assert SECRET not in result.stderr


def test_a_key_in_the_url_query_is_sent_with_every_request_and_written_nowhere(
    llm, workdir, cache_dir
):
    # Azure-style endpoints take the key as a query parameter: it goes on every request, after
    # the API path, not before it.
    out = workdir / "run"
    result = write(*run_args(out, f"{llm.base_url}?api-key={SECRET}"))
    assert result.exit_code == 0, result.stderr
    assert {r.path for r in llm.chat_requests()} == {"/v1/chat/completions"}
    assert all(r.query == {"api-key": SECRET} for r in llm.chat_requests())
    assert_written_nowhere(SECRET, result, out, cache_dir)
