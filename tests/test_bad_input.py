"""Bad input through ``surveygen write`` (issue #6), one case at a time.

Each case goes through the real command against the scripted model and checks the contract
of the README: exit code 2 for input the tool cannot use, with a message naming the flag, file
(and line) or key; exit code 0 when only some entries are bad, each skipped with one warning
naming it and the reason; never a traceback. Lower-level cases of the same readers are in
test_documents.py, test_library_*.py and test_gather.py; test_cli.py has the first usage errors.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fakellm import FakeLLMServer
from pdfgen import encrypt_pdf, make_pdf
from scripted import pipeline_responder
from scripted_skeleton import OUTLINE_TASK

from surveygen.cli import main
from surveygen.pipeline import MAX_TOPIC_CHARS
from surveygen.rundir import slugify
from surveygen.stages.render import render_outline_md

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "data" / "sample_library.jsonl"
TOPIC = "retrieval-augmented language models"

GOOD_PAPER = (
    "Dense Passage Retrieval for Open-Domain Question Answering\n\n"
    "Abstract\n"
    "Retrieval-augmented language models read passages from a dense index before they answer. "
    "We train a dual encoder on question and passage pairs. "
    "Dense passage retrieval beats BM25 on open-domain question answering benchmarks.\n\n"
    "1 Introduction\n"
    "Open-domain question answering needs a retriever that finds the right passages. "
    "Our retriever improves exact match by nine points on Natural Questions.\n"
)


# --- helpers ---------------------------------------------------------------------------------


def write(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["write", *args], env=env, catch_exceptions=False)


def write_with(server: FakeLLMServer, *args: str, topic: str = TOPIC) -> Result:
    """``surveygen write TOPIC`` against ``server``, without arXiv search or full-text fetches
    (the sample library's arXiv ids would only meet the closed test port)."""
    return write(topic, "--base-url", server.base_url, "--no-search", "--no-full-text", *args)


def refused(result: Result, *needles: str) -> str:
    """stderr of a run that stopped with exit code 2, after checking that it names each of
    ``needles`` and shows no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") or "\nerror: " in result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    return result.stderr


def succeeded(result: Result) -> str:
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def warning_about(stderr: str, where: Path | str) -> str:
    """The one warning line of ``stderr`` that names ``where``."""
    lines = [line for line in stderr.splitlines() if line.startswith("warning:")]
    hits = [line for line in lines if str(where) in line]
    assert len(hits) == 1, (str(where), lines)
    return hits[0]


def papers_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "papers.jsonl").read_text("utf-8").splitlines()]


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text("utf-8"))


def good_paper(path: Path) -> Path:
    path.write_text(GOOD_PAPER, "utf-8")
    return path


def pdf_bytes() -> bytes:
    return make_pdf(GOOD_PAPER.split("\n\n1 Introduction\n"), title="Dense Passage Retrieval")


def corrupt_pdf(path: Path) -> Path:
    data = pdf_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def encrypted_pdf(path: Path) -> Path:
    path.write_bytes(encrypt_pdf(pdf_bytes()))
    return path


def binary_junk(path: Path) -> Path:
    path.write_bytes(b"\x00" + os.urandom(8191))  # NUL: binary however the bytes fall
    return path


# --- 1. the topic ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "needles"),
    [
        ("x" * 10_000, ["10000 characters", f"limit is {MAX_TOPIC_CHARS}"]),
        ("\t\n \u00a0\u3000 ", ["topic is empty", "surveygen write"]),
        ("\u200b\u200d ?! \u2014", ["topic has no letters or digits", "surveygen write"]),
    ],
    ids=["10000-characters", "unicode-whitespace", "no-letters"],
)
def test_a_topic_the_tool_cannot_use_is_exit_2(llm, workdir, topic, needles):
    out = workdir / "run"
    result = write_with(llm, "--papers", str(LIBRARY), "--out", str(out), topic=topic)
    refused(result, *needles)
    assert llm.chat_requests() == []
    assert not out.exists()


# --- 2. a topic in another language ----------------------------------------------------------

NON_ENGLISH = ["检索增强的语言模型", "Sprachmodelle mit Abrufunterstützung für Übersetzungen"]


def untitled_outline(body: dict) -> str:
    """The scripted model, except that its outline leaves the survey's title empty, so the
    survey is titled with the topic as surveygen received it."""
    answer = pipeline_responder(body)
    text = "\n".join(str(m.get("content") or "") for m in body["messages"])
    if OUTLINE_TASK in text:
        outline = json.loads(answer)
        outline["title"] = ""
        answer = json.dumps(outline)
    return answer


@pytest.fixture
def untitled_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(untitled_outline) as server:
        yield server


def check_non_english_run(workdir: Path, topic: str, stdout: str, server: FakeLLMServer) -> None:
    out = Path("surveys") / slugify(topic)
    assert out.name.isascii() and out.name
    assert stdout.splitlines()[0] == str(out / "survey.md")
    survey = (workdir / out / "survey.md").read_bytes().decode("utf-8")  # strict
    assert survey.splitlines()[0] == f"# {topic}"
    assert report_of(workdir / out)["topic"] == topic
    outline_prompts = [
        r.prompt_text for r in server.chat_requests() if OUTLINE_TASK in r.prompt_text
    ]
    assert outline_prompts and f"Topic: {topic}\n" in outline_prompts[0]


@pytest.mark.parametrize("topic", NON_ENGLISH, ids=["chinese", "german"])
def test_a_topic_in_another_language_is_written_into_surveys(untitled_llm, workdir, topic):
    result = write_with(untitled_llm, "--papers", str(LIBRARY), topic=topic)
    succeeded(result)
    check_non_english_run(workdir, topic, result.stdout, untitled_llm)


def c_locale_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "PYTHON"))}
    env.update(LC_ALL="C", LANG="C", **extra)
    return env


def run_installed(server: FakeLLMServer, topic: str, env: dict[str, str]):
    exe = Path(sys.executable).with_name("surveygen")
    args = ["write", topic, "--papers", str(LIBRARY), "--no-search", "--no-full-text"]
    return subprocess.run(
        [str(exe), *args, "--base-url", server.base_url],
        capture_output=True,
        env=env,
        timeout=120,
    )


@pytest.mark.subprocess
@pytest.mark.parametrize("topic", NON_ENGLISH, ids=["chinese", "german"])
def test_a_topic_in_another_language_under_the_c_locale(untitled_llm, workdir, topic):
    done = run_installed(untitled_llm, topic, c_locale_env())
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, stderr
    assert "Traceback" not in stderr
    check_non_english_run(workdir, topic, done.stdout.decode("ascii"), untitled_llm)


@pytest.mark.subprocess
def test_a_topic_in_another_language_under_a_c_locale_without_utf8_mode(llm, workdir):
    topic = NON_ENGLISH[0]
    done = run_installed(llm, topic, c_locale_env(PYTHONCOERCECLOCALE="0", PYTHONUTF8="0"))
    stderr = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr
    assert done.returncode in (0, 2), stderr
    if done.returncode == 0:  # the topic's bytes recovered as UTF-8
        assert report_of(workdir / "surveys" / slugify(topic))["topic"] == topic
    else:  # or refused, saying how to set the locale
        assert "UTF-8" in stderr


# --- 3. no paper at all ----------------------------------------------------------------------


def empty_folder(root: Path) -> tuple[Path, str]:
    (root / "papers").mkdir()
    return root / "papers", "no .pdf, .txt or .md files found"


def empty_jsonl(root: Path) -> tuple[Path, str]:
    (root / "papers.jsonl").write_text("\n  \n", "utf-8")
    return root / "papers.jsonl", "skipped: empty file"


def entryless_bib(root: Path) -> tuple[Path, str]:
    (root / "refs.bib").write_text("% exported by hand\n@comment{nothing here}\n", "utf-8")
    return root / "refs.bib", "skipped: no BibTeX entries"


@pytest.mark.parametrize("make", [empty_folder, empty_jsonl, entryless_bib])
def test_a_library_with_no_paper_is_exit_2_naming_the_file(llm, workdir, make):
    path, reason = make(workdir)
    out = workdir / "run"
    result = write_with(llm, "--papers", str(path), "--out", str(out))
    stderr = refused(result, "no papers to write from", f"--papers {path} (")
    assert reason in warning_about(stderr, path)
    assert llm.chat_requests() == []


# --- 4. and 6. unusable documents: corrupt and encrypted PDFs, binary data named .txt ---------

UNUSABLE = {
    "corrupt.pdf": (corrupt_pdf, "skipped: corrupt PDF"),
    "locked.pdf": (encrypted_pdf, "skipped: encrypted PDF (needs a password)"),
    "junk.txt": (binary_junk, "skipped: binary data, not text"),
}


@pytest.mark.parametrize(
    ("names", "as_folder"),
    [
        (["corrupt.pdf", "locked.pdf"], True),
        (["junk.txt"], True),
        (["corrupt.pdf"], False),
        (["locked.pdf"], False),
        (["junk.txt"], False),
    ],
    ids=["pdfs-in-a-folder", "junk-in-a-folder", "corrupt-pdf", "encrypted-pdf", "junk-txt"],
)
def test_only_unusable_documents_is_exit_2_naming_each_with_its_reason(
    llm, workdir, names, as_folder
):
    folder = workdir / "papers"
    folder.mkdir()
    paths = {name: UNUSABLE[name][0](folder / name) for name in names}
    given = folder if as_folder else paths[names[0]]
    result = write_with(llm, "--papers", str(given), "--out", str(workdir / "run"))
    stderr = refused(result, "no papers to write from", f"--papers {given}")
    for name, path in paths.items():
        assert UNUSABLE[name][1] in warning_about(stderr, path)
    assert llm.chat_requests() == []


def test_unusable_documents_next_to_a_good_paper_are_skipped_and_the_run_goes_on(llm, workdir):
    folder = workdir / "papers"
    folder.mkdir()
    good_paper(folder / "dpr.txt")
    bad = {name: make(folder / name) for name, (make, _) in UNUSABLE.items()}
    out = workdir / "run"
    stderr = succeeded(write_with(llm, "--papers", str(folder), "--out", str(out)))
    for name, path in bad.items():
        assert UNUSABLE[name][1] in warning_about(stderr, path)
    assert [p["title"] for p in papers_of(out)] == [GOOD_PAPER.splitlines()[0]]
    assert report_of(out)["papers"]["skipped_input"] == len(bad)


def test_file_names_that_are_not_utf8_do_not_stop_the_run(llm, workdir):
    folder = os.fsencode(workdir / "papers")
    os.mkdir(folder)
    try:  # Latin-1 names, as an old archive unpacked on Linux gives
        untitled = os.path.join(folder, b"caf\xe9 retrieval notes.txt")
        broken = os.path.join(folder, b"\xe9tude.pdf")
        empty = os.path.join(os.fsencode(workdir), b"vid\xe9")
        Path(os.fsdecode(untitled)).write_text("retrieval.\n", "utf-8")  # titled by its name
        corrupt_pdf(Path(os.fsdecode(broken)))
        os.mkdir(empty)
    except OSError as exc:  # macOS and Windows file systems refuse such names
        pytest.skip(f"this file system refuses file names that are not UTF-8 ({exc})")
    good_paper(Path(os.fsdecode(folder)) / "dpr.txt")
    out = workdir / "run"
    papers = ["--papers", os.fsdecode(folder), "--papers", os.fsdecode(empty)]
    stderr = succeeded(write_with(llm, *papers, "--out", str(out)))
    assert "skipped: corrupt PDF" in warning_about(stderr, "\\xe9tude.pdf")
    assert "no .pdf, .txt or .md files found" in warning_about(stderr, "vid\\xe9")
    titles = {p["title"] for p in papers_of(out)}  # read back as strict UTF-8
    assert titles == {"caf\ufffd retrieval notes", GOOD_PAPER.splitlines()[0]}
    warnings = report_of(out)["warnings"]
    assert any("\\xe9tude.pdf" in w for w in warnings) and any("vid\\xe9" in w for w in warnings)


def test_an_empty_folder_whose_name_is_not_utf8_is_exit_2_naming_it(llm, workdir):
    empty = os.path.join(os.fsencode(workdir), b"vid\xe9")
    try:
        os.mkdir(empty)
    except OSError as exc:
        pytest.skip(f"this file system refuses file names that are not UTF-8 ({exc})")
    result = write_with(llm, "--papers", os.fsdecode(empty), "--out", str(workdir / "run"))
    refused(result, "no papers to write from", f"--papers {workdir}/vid\\xe9 (0 entries read")
    assert llm.chat_requests() == []


# --- 5. a file over the size cap ---------------------------------------------------------------


def test_a_100_mb_file_is_skipped_by_its_size_without_being_read(llm, workdir):
    folder = workdir / "papers"
    folder.mkdir()
    good_paper(folder / "dpr.txt")
    huge = folder / "huge.txt"
    chunk = ("Retrieval-augmented language models read passages. " * 20_000).encode()[:1_000_000]
    with huge.open("wb") as handle:
        for _ in range(100):
            handle.write(chunk)
    assert huge.stat().st_size == 100_000_000

    opened: list[str] = []
    path_open, real_open = Path.open, builtins.open

    def recording_path_open(self: Path, *args, **kwargs):
        opened.append(str(self))
        return path_open(self, *args, **kwargs)

    def recording_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    out = workdir / "run"
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Path, "open", recording_path_open)
            patch.setattr(builtins, "open", recording_open)
            stderr = succeeded(write_with(llm, "--papers", str(folder), "--out", str(out)))
    finally:
        huge.unlink()  # pytest keeps the last runs' folders: not 100 MB each

    warning = warning_about(stderr, huge)
    assert "skipped: larger than the 50 MB limit (100 MB)" in warning
    assert "max_file_mb" in warning
    assert str(huge) not in opened
    assert str(folder / "dpr.txt") in opened  # the recording does see the files read
    assert len(papers_of(out)) == 1


# --- 7. malformed .bib and JSONL: bad entries and lines are skipped, named by line ------------


def test_malformed_bib_entries_are_skipped_naming_the_line(llm, workdir):
    bib = workdir / "refs.bib"
    bib.write_text(
        "@article{dpr, title={Dense Passage Retrieval for Open-Domain QA}, year={2020}}\n"
        "@@@ {{{ garbage }}} @misc{,}\n"
        "@article{unclosed, title={Retrieval {with unbalanced braces}, year={2021},\n"
        "\n"
        "@article{rag, title={Retrieval-Augmented Generation}, year={2020}}\n",
        "utf-8",
    )
    out = workdir / "run"
    stderr = succeeded(write_with(llm, "--papers", str(bib), "--out", str(out)))
    garbage = [line for line in stderr.splitlines() if f"{bib}:2: " in line]
    assert garbage and all(": skipped: " in line for line in garbage)
    assert "skipped: malformed entry (" in garbage[0]
    unclosed = warning_about(stderr, f"{bib}:3: ")
    assert "skipped: malformed entry (" in unclosed and "closing `}`" in unclosed
    assert sorted(p["key"] for p in papers_of(out)) == ["dpr", "rag"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"@article{a, title={Unclosed\n", "malformed entry (Unexpectedly reached end of file"),
        (b"just some notes, { no entries }\n", "no BibTeX entries"),
        ("@article{a, title={Caf\xe9}}\n".encode("latin-1"), "not UTF-8 text"),
    ],
    ids=["unbalanced-braces", "garbage", "latin-1"],
)
def test_a_bib_with_no_usable_entry_is_exit_2_naming_the_file(llm, workdir, content, reason):
    bib = workdir / "refs.bib"
    bib.write_bytes(content)
    stderr = refused(write_with(llm, "--papers", str(bib), "--out", str(workdir / "run")))
    assert reason in warning_about(stderr, bib)
    assert f"--papers {bib} (1 entries read, 1 unusable)" in stderr


def test_malformed_jsonl_lines_are_skipped_naming_the_line(llm, workdir):
    lines = workdir / "papers.jsonl"
    lines.write_bytes(
        b'{"title": "Dense Passage Retrieval", "abstract": "Dual encoders retrieve passages."}\n'
        b'{"title": "Broken line", \n'
        b"[1, 2, 3]\n"
        b'{"title": "Caf\xe9 retrieval"}\n'
        b'{"title": "Retrieval-Augmented Generation", "abstract": "Generation reads passages."}\n'
    )
    out = workdir / "run"
    stderr = succeeded(write_with(llm, "--papers", str(lines), "--out", str(out)))
    expected = {
        2: "skipped: invalid JSON (",
        3: "skipped: not a JSON object (got an array)",
        4: "skipped: not valid UTF-8 (byte ",
    }
    for line, reason in expected.items():
        assert reason in warning_about(stderr, f"{lines}:{line}:")
    assert sorted(p["title"] for p in papers_of(out)) == [
        "Dense Passage Retrieval",
        "Retrieval-Augmented Generation",
    ]


# --- 8. --outline files ----------------------------------------------------------------------


def outline_with_two_ids_n1() -> str:
    """An outline.md as surveygen writes it, with a heading copied together with its id."""
    from surveygen.models import Outline, OutlineNode

    text = render_outline_md(
        Outline(
            title="Retrieval",
            sections=(
                OutlineNode("n1", "Dense retrievers", "Extract designs."),
                OutlineNode("n2", "Evaluation", "Compare results."),
            ),
        )
    )
    assert "<!-- id: n2 -->" in text
    return text.replace("<!-- id: n2 -->", "<!-- id: n1 -->")


def heading_line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ("# Retrieval\n\n#### Dense retrievers\n", ["line 3", "jumps from # to ####"]),
        (
            "# Retrieval\n\n## Retrievers\n\n#### Dense\n",
            ["line 5", "jumps from ## to ####", "add the missing level"],
        ),
        (outline_with_two_ids_n1(), ["id 'n1' is already used on line", "ids must be unique"]),
        ("# Retrieval\n", ["line 1", "no sections", "add at least one '## Section'"]),
        ("# Retrieval\n\nOnly notes, no headings.\n", ["line 3", "belongs to no section"]),
        ("", ["the file is empty"]),
        ("\n \n\t\n", ["the file is empty"]),
        (b"%PDF-1.7\n\xe2\xe3\xcf\xd3\n", ["not UTF-8 text"]),
        ("# Retrieval\n\n" + "Notes on retrieval.\n" * 60_000, ["larger than 1 MB"]),
        (None, ["cannot read it (No such file or directory)"]),
    ],
    ids=[
        "title-then-h4",
        "h2-then-h4",
        "duplicate-ids",
        "no-sections",
        "notes-but-no-sections",
        "empty",
        "blank",
        "a-pdf",
        "2-mb",
        "missing",
    ],
)
def test_a_bad_outline_is_exit_2_naming_the_file_before_any_call(llm, workdir, content, needles):
    path = workdir / "outline.md"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, "utf-8")
    out = workdir / "run"
    result = write_with(llm, "--papers", str(LIBRARY), "--outline", str(path), "--out", str(out))
    refused(result, str(path), *needles)
    if "already used" in needles[0]:
        first, copy = heading_line(content, "Dense retrievers"), heading_line(content, "Evaluation")
        assert f"line {copy}: id 'n1' is already used on line {first};" in result.stderr
    assert llm.chat_requests() == []
    assert not out.exists()


# --- 9. configuration --------------------------------------------------------------------------


def user_config(workdir: Path) -> Path:
    folder = Path(os.environ["XDG_CONFIG_HOME"]) / "surveygen"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "surveygen.toml"


@pytest.mark.parametrize(
    ("where", "content", "needles"),
    [
        (
            "cwd",
            "max_file_megabytes = 5\n[models]\ndigset = 'gpt-4o'\n",
            ["unknown key 'max_file_megabytes'", "'max_file_mb'", "unknown key 'models.digset'"],
        ),
        ("user", "temprature = 0.2\n", ["unknown key 'temprature'", "'temperature'"]),
        ("cwd", "concurrency = = 3\n", ["invalid TOML", "line 4"]),
        ("cwd", "[models\ndigest = 'x'\n", ["invalid TOML", "line 4"]),
        ("--config", "timeout = [\n", ["invalid TOML", "end of document"]),
        ("cwd", "concurrency = 'many'\n", ["'concurrency' must be an integer"]),
    ],
    ids=["unknown-keys", "unknown-key-user-file", "bad-value", "bad-table", "cut-short", "type"],
)
def test_a_bad_config_file_is_exit_2_naming_the_file_and_key(llm, workdir, where, content, needles):
    extra: list[str] = []
    if where == "cwd":
        path = workdir / "surveygen.toml"
        content = path.read_text("utf-8") + content  # after the fixture's three lines
    elif where == "user":
        path = user_config(workdir)
    else:
        path = workdir / "other.toml"
        extra = ["--config", str(path)]
    path.write_text(content, "utf-8")
    result = write_with(llm, "--papers", str(LIBRARY), "--out", str(workdir / "run"), *extra)
    refused(result, f"{path}:", *needles)
    assert llm.chat_requests() == []


# --- 10. an output folder that cannot be written ---------------------------------------------


@contextlib.contextmanager
def read_only_folder(path: Path) -> Iterator[None]:
    """``path``, an existing folder, made read-only for this process: a read-only tmpfs
    mounted on it when running as root (root ignores permission bits), else mode 0o555.
    Skips the test, saying why, when neither can be done."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    mount = shutil.which("mount")
    if mount is None:
        pytest.skip("running as root, where chmod does not stop writes, and no mount command")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(
            "running as root, where chmod does not stop writes, and a read-only tmpfs cannot "
            f"be mounted here: {done.stderr.strip() or done.returncode}"
        )
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_out_under_a_regular_file_is_exit_2_naming_out(llm, workdir):
    (workdir / "notes.txt").write_text("mine\n", "utf-8")
    out = workdir / "notes.txt" / "run"
    result = write_with(llm, "--papers", str(LIBRARY), "--out", str(out))
    refused(result, f"--out {out}", "cannot create or write", "choose another --out")
    assert (workdir / "notes.txt").read_text("utf-8") == "mine\n"
    assert llm.chat_requests() == []


def test_out_that_is_a_file_is_exit_2_naming_out(llm, workdir):
    out = workdir / "survey.md"
    out.write_text("mine\n", "utf-8")
    result = write_with(llm, "--papers", str(LIBRARY), "--out", str(out))
    refused(result, f"--out {out}", "exists and is not a directory")
    assert out.read_text("utf-8") == "mine\n"
    assert llm.chat_requests() == []


@pytest.mark.parametrize("inside", [True, False], ids=["new-folder-inside", "the-folder-itself"])
def test_out_in_a_read_only_folder_is_exit_2_naming_out(llm, workdir, inside):
    folder = workdir / "readonly"
    folder.mkdir()
    out = folder / "run" if inside else folder
    with read_only_folder(folder):
        result = write_with(llm, "--papers", str(LIBRARY), "--out", str(out))
        refused(result, f"--out {out}", "cannot create or write the run directory")
        assert list(folder.iterdir()) == []
    assert llm.chat_requests() == []


# --- 11. --resume with nothing of this topic to resume ---------------------------------------


def test_resume_against_another_topics_run_is_exit_2_and_leaves_it_untouched(llm, workdir):
    out = workdir / "run"
    succeeded(write_with(llm, "--papers", str(LIBRARY), "--out", str(out)))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    calls = len(llm.chat_requests())
    result = write_with(
        llm, "--papers", str(LIBRARY), "--out", str(out), "--resume", topic="another topic"
    )
    refused(
        result,
        f"--resume: {out} holds a run for topic {TOPIC!r}, not 'another topic'",
        "choose the --out of this one",
    )
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert len(llm.chat_requests()) == calls


@pytest.mark.parametrize("exists", [False, True], ids=["no-folder", "empty-folder"])
def test_resume_with_nothing_to_resume_is_exit_2(llm, workdir, exists):
    out = workdir / "run"
    if exists:
        out.mkdir()
    result = write_with(llm, "--papers", str(LIBRARY), "--out", str(out), "--resume")
    refused(result, f"nothing to resume in {out}", "run again without --resume")
    assert llm.chat_requests() == []


def test_resume_with_nothing_to_resume_leaves_no_folder_behind(llm, workdir):
    out = workdir / "run"
    refused(write_with(llm, "--papers", str(LIBRARY), "--out", str(out), "--resume"))
    assert not out.exists()
