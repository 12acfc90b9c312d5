"""The command line: a thin layer over the library.

Heavy modules (openai, numpy, rich, the stages) are imported inside the commands, so
``surveygen --help`` answers at once. Errors from the library are turned into messages and
exit codes in one place, :func:`_fail`: 0 success, 1 the run failed, 2 usage or input error,
130 interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from surveygen import __version__
from surveygen.errors import NotImplementedYet, SurveygenError

FORMATS = ("md", "tex", "html", "bib")


def _fail(error: SurveygenError) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(error.exit_code)


def _handles_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SurveygenError as error:
            _fail(error)
        except KeyboardInterrupt:
            click.echo(
                "\ninterrupted: answers received so far are cached; rerun the same command "
                "with --resume to continue.",
                err=True,
            )
            sys.exit(130)

    return wrapper


def _parse_formats(value: str | None) -> list[str] | None:
    if value is None:
        return None
    formats = [f.strip().lower() for f in value.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise click.BadParameter(
            f"unknown format {', '.join(unknown) or '(none)'}; choose from {','.join(FORMATS)}",
            param_hint="--format",
        )
    return formats


# Options that write and ask share.
_config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="A surveygen.toml to use instead of the one in this folder.",
)
_context_option = click.option(
    "--context-tokens",
    type=click.IntRange(min=4096),
    help="The model's context; longer texts are read in chunks that fit (default 32000).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="surveygen")
def main() -> None:
    """Write long-form, cited literature surveys from real papers."""


@main.command()
@click.argument("topic")
@click.option(
    "--papers",
    "papers",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Your library: a folder of PDF/TXT/MD, a .bib (Zotero export), papers.jsonl or "
    "V2 .json (repeatable).",
)
@click.option(
    "--arxiv-ids",
    "arxiv_ids",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A text file of arXiv ids or URLs to include (repeatable).",
)
@click.option("--no-search", is_flag=True, help="Do not search arXiv; use only your papers.")
@click.option(
    "--max-papers", type=click.IntRange(min=1), help="Library size after ranking (default 60)."
)
@click.option("--refresh", is_flag=True, help="Search arXiv again instead of using the cache.")
@click.option(
    "--screen/--no-screen",
    default=None,
    help="Let the LLM rate search results' relevance (default on).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Run directory (default ./surveys/<slug-of-topic>).",
)
@click.option("--model", help="Model for every stage (default gpt-4o-mini).")
@click.option("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Parallel LLM calls (default 8).")
@click.option(
    "--engine", type=click.Choice(["llm", "extractive"]), help="llm (default) or extractive."
)
@click.option(
    "--format", "formats", metavar="LIST", help="Outputs, from md,tex,html,bib (default md)."
)
@click.option(
    "--outline", type=click.Path(path_type=Path), help="Write from your edited outline.md."
)
@click.option("--resume", is_flag=True, help="Finish an interrupted run in --out.")
@click.option("--force", is_flag=True, help="Replace a run of another topic in --out.")
@click.option("--budget", type=click.FloatRange(min=0), help="Stop before spending more USD.")
@click.option("--dry-run", is_flag=True, help="Show the planned LLM calls and exit.")
@click.option(
    "--layers", type=click.IntRange(min=0), help="Refinement layers; 0 skips it (default 3)."
)
@click.option("--kernel", type=click.IntRange(min=2), help="Refinement kernel width (default 3).")
@click.option("--top-k", type=click.IntRange(min=1), help="Outlines kept per layer (default 3).")
@_context_option
@click.option(
    "--full-text/--no-full-text", default=None, help="Use papers' full text (default on)."
)
@click.option("--max-sections", type=click.IntRange(min=1), help="Most leaf sections (default 12).")
@click.option(
    "--length",
    type=click.IntRange(min=300, max=200_000),
    help="Total words of the survey (default about 135 per paper with evidence).",
)
@click.option("--language", help="Language the survey is written in (default English).")
@click.option(
    "--citation-style",
    type=click.Choice(["numeric", "author-year", "pandoc"]),
    help="How survey.md and survey.html cite: [1], (Lewis et al., 2020) or [@key] for Pandoc.",
)
@click.option(
    "--verify",
    type=click.Choice(["lexical", "llm"]),
    help="Check each cited sentence against the paper's evidence by word overlap (default) "
    "or also ask the LLM whether the evidence entails it.",
)
@click.option("--bib-all", is_flag=True, help="references.bib lists every paper, not only cited.")
@_config_option
@_handles_errors
def write(
    topic: str,
    papers: tuple[Path, ...],
    arxiv_ids: tuple[Path, ...],
    no_search: bool,
    max_papers: int | None,
    refresh: bool,
    screen: bool | None,
    out: Path | None,
    model: str | None,
    base_url: str | None,
    concurrency: int | None,
    engine: str | None,
    formats: str | None,
    outline: Path | None,
    resume: bool,
    force: bool,
    budget: float | None,
    dry_run: bool,
    layers: int | None,
    kernel: int | None,
    top_k: int | None,
    context_tokens: int | None,
    full_text: bool | None,
    max_sections: int | None,
    length: int | None,
    language: str | None,
    citation_style: str | None,
    verify: str | None,
    bib_all: bool | None,
    config_file: Path | None,
) -> None:
    """Write a cited survey on TOPIC into a run directory."""
    from surveygen.config import load_settings

    format_list = _parse_formats(formats)
    if resume and force:
        raise click.UsageError("--resume and --force exclude each other")

    settings = load_settings(
        {
            "model": model,
            "base_url": base_url,
            "concurrency": concurrency,
            "engine": engine,
            "formats": format_list,
            "budget": budget,
            "max_sections": max_sections,
            "max_papers": max_papers,
            "screen": screen,
            "layers": layers,
            "kernel": kernel,
            "top_k": top_k,
            "context_tokens": context_tokens,
            "length": length,
            "language": language,
            "citation_style": citation_style,
            "verify": verify,
            "bib_all": bib_all or None,  # an absent flag must not mask the config file
        },
        config_file=config_file,
    )
    for warning in settings.warnings:
        click.echo(f"warning: {warning}", err=True)
    if settings.engine == "extractive":
        raise NotImplementedYet("--engine extractive", coming="the extractive engine (issue #8)")

    import asyncio

    from surveygen.pipeline import Pipeline, WriteRequest
    from surveygen.report import summary_lines
    from surveygen.ui import UI

    request = WriteRequest(
        topic=topic,
        papers=papers,
        out=out,
        resume=resume,
        force=force,
        dry_run=dry_run,
        full_text=True if full_text is None else full_text,
        no_search=no_search,
        arxiv_ids=arxiv_ids,
        refresh=refresh,
        outline=outline,
    )
    result = asyncio.run(Pipeline(settings, request, UI()).run())
    if dry_run:
        plan = result.report
        click.echo(f"topic: {plan['topic']}")
        if plan["arxiv_search"]:
            click.echo(
                f"papers: at most {plan['papers']} ({plan['user_papers']} of yours, the rest "
                "from arXiv search, which a dry run does not perform)"
            )
        else:
            click.echo(f"papers: {plan['papers']}")
        if plan["arxiv_search"]:
            click.echo("(papers found by search are counted as fitting the context)")
        unread = plan.get("unread_texts", 0)
        if unread:
            click.echo(
                f"(your {unread} paper(s) whose text comes from arXiv or a PDF during the run "
                "are counted as fitting the context)"
            )
        click.echo(f"outline: {plan['outline']}")
        for stage, calls in plan["planned_calls_upper_bound"].items():
            click.echo(f"{stage}: at most {calls} call(s) with {plan['models'][stage]}")
            if stage == "refine":
                for layer in plan["refine_layers"]:
                    parts = ", ".join(f"{k} {v}" for k, v in layer.items() if k != "layer")
                    click.echo(f"  layer {layer.get('layer', '?')}: {parts}")
            if stage == "write":
                click.echo("  " + ", ".join(f"{k} {v}" for k, v in plan["write_calls"].items()))
        click.echo(f"total: at most {plan['total_upper_bound']} calls (plus retries and repairs)")
        return
    for line in summary_lines(result.report):
        click.echo(line, err=True)
    for path in result.outputs:
        click.echo(os.fsencode(path))  # the path's own bytes, whatever stdout's encoding


@main.command()
@click.argument("survey", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--strict", is_flag=True, help="Exit 1 when a cited number has no entry in References."
)
@_handles_errors
def check(survey: Path, as_json: bool, strict: bool) -> None:
    """Report structure and citations of a Markdown survey with numeric [n] citations.

    Works on any tool's survey that cites [1], [2, 5], [3-4] and lists numbered entries
    under a References or Bibliography heading. Findings are not failures: the exit code
    is 0 unless --strict finds unresolved citations.
    """
    import json

    from surveygen.check import check_file, summary_lines

    report = check_file(survey)
    if as_json:
        data = {"file": str(survey), **report.to_json()}
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for line in summary_lines(report):
            click.echo(line)
    if strict and report.unresolved:
        shown = ", ".join(str(n) for n in report.unresolved[:20])
        click.echo(
            f"error: {survey}: {len(report.unresolved)} cited number(s) with no entry in "
            f"References ({shown}); add the entries or fix the citations",
            err=True,
        )
        sys.exit(1)


@main.command()
@click.argument("question")
@click.option(
    "--papers",
    "papers",
    multiple=True,
    type=click.Path(path_type=Path),
    help="The library to answer from, as for write --papers (repeatable; required).",
)
@click.option("--model", help="Model (default: the digest stage's model, gpt-4o-mini).")
@click.option("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Parallel LLM calls (default 8).")
@_context_option
@click.option("--budget", type=click.FloatRange(min=0), help="Stop before spending more USD.")
@click.option(
    "--full-text/--no-full-text", default=True, help="Use papers' full text (default on)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@_config_option
@_handles_errors
def ask(
    question: str,
    papers: tuple[Path, ...],
    model: str | None,
    base_url: str | None,
    concurrency: int | None,
    context_tokens: int | None,
    budget: float | None,
    full_text: bool,
    as_json: bool,
    config_file: Path | None,
) -> None:
    """Answer QUESTION over a library of any length, with cited, verified quotes.

    The library is read with LLM×MapReduce-V1's protocol: map each chunk to extracted
    information, rationale, answer and confidence; collapse; reduce to one answer.
    """
    import asyncio
    import json

    from surveygen.ask import format_answer, run_ask
    from surveygen.config import load_settings
    from surveygen.ui import UI

    settings = load_settings(
        {
            "model": model,
            "base_url": base_url,
            "concurrency": concurrency,
            "context_tokens": context_tokens,
            "budget": budget,
        },
        config_file=config_file,
    )
    for warning in settings.warnings:
        click.echo(f"warning: {warning}", err=True)
    result = asyncio.run(run_ask(settings, question, papers, full_text=full_text, ui=UI()))
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_answer(result))
