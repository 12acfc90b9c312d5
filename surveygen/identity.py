"""What a run's saved state was made with, so ``--resume`` never mixes incompatible work.

The manifest (``state/run.json``) records the run's *identity*: the models, the prompts and
the options that shape what the LLM is asked. ``--resume`` finishes a run only with the same
identity; otherwise it stops and names each change. Options that do not change any answer
(``--budget``, ``--concurrency``, ``--format``, timeouts, retries) may differ freely.

The library is not part of the identity: ``state/gather.json`` records what it was built
from, and every digest records the paper and the outline it was made for, so a changed
library is rebuilt item by item (with a warning) rather than refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from surveygen import __version__

if TYPE_CHECKING:
    from surveygen.config import Settings
    from surveygen.models import Outline

__all__ = ["describe_changes", "outline_stamp", "prompts_version", "run_identity"]


def prompts_version() -> str:
    """One hash of every prompt template shipped with surveygen."""
    from surveygen.llm.prompts import available_prompts, prompt_version

    digest = hashlib.sha256()
    for name in available_prompts():
        digest.update(f"{name}={prompt_version(name)};".encode())
    return digest.hexdigest()[:12]


def outline_stamp(outline: Outline | None) -> str | None:
    """The ``--outline`` by what it says (title, headings, levels and descriptions; not the
    ids it gives new headings, nor its formatting, so the outline.md a run writes back from
    it has the same stamp), or None when there is none."""
    if outline is None:
        return None
    shape = [outline.title] + [[level, n.title, n.description] for n, level in outline.walk()]
    blob = json.dumps(shape, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:12]


def run_identity(settings: Settings, outline: Outline | None) -> dict[str, Any]:
    """The identity of a run with these settings and ``--outline`` (parsed)."""
    return {
        "surveygen": __version__,
        "prompts": prompts_version(),
        "engine": settings.engine,
        "models": dict(sorted(settings.models.items())),
        "temperature": settings.temperature,
        "max_output_tokens": settings.max_output_tokens,
        "context_tokens": settings.context_tokens,
        "max_sections": settings.max_sections,
        "refine": {
            "layers": settings.layers,
            "kernel": settings.kernel,
            "top_k": settings.top_k,
            "candidates": settings.refine_candidates,
            "weights": [
                settings.weight_judge,
                settings.weight_entropy,
                settings.weight_coverage,
                settings.weight_redundancy,
            ],
        },
        "language": settings.language,
        "length": settings.length,
        "verify": settings.verify,
        "max_tables": settings.max_tables,
        "outline": outline_stamp(outline),
    }


# How each identity entry is named to the user: the flag or surveygen.toml key.
_NAMES = {
    "surveygen": "surveygen version",
    "prompts": "prompt templates (surveygen was changed)",
    "engine": "--engine",
    "temperature": "temperature",
    "max_output_tokens": "max_output_tokens",
    "context_tokens": "--context-tokens",
    "max_sections": "--max-sections",
    "refine": "refinement options (--layers, --kernel, --top-k, refine_candidates, weights)",
    "language": "--language",
    "length": "--length",
    "verify": "--verify",
    "max_tables": "max_tables",
}


def _show(value: Any) -> str:
    return "default" if value is None else str(value)


def describe_changes(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], *, ignore: tuple[str, ...] = ()
) -> list[str]:
    """Each difference between the identity saved by a run (``old``) and ``new``, in words;
    [] when they agree. An ``old`` of None (a run by a surveygen without identities) is one
    difference."""
    if old is None:
        return ["the run was made by an older surveygen that did not record its options"]
    changes: list[str] = []
    for key, value in new.items():
        if key in ignore or old.get(key) == value:
            continue
        before = old.get(key)
        if key == "models":
            before = before if isinstance(before, Mapping) else {}
            for stage, model in value.items():
                if before.get(stage) != model:
                    changes.append(f"model for {stage}: {_show(before.get(stage))} → {model}")
        elif key == "outline":
            if before is None:
                changes.append("--outline: now given, the run was made without it")
            elif value is None:
                changes.append("--outline: the run was made with one, now none is given")
            else:
                changes.append("--outline: the file's content differs")
        elif key in ("refine", "prompts"):
            changes.append(_NAMES[key])
        else:
            changes.append(f"{_NAMES.get(key, key)}: {_show(before)} → {_show(value)}")
    return changes
