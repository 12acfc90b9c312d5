"""Settings: where every option comes from, and which source wins.

Each setting is taken from the first of these sources that sets it (highest first):

1. a command-line flag (``--concurrency 4``; a flag that is not given never masks a lower source);
2. the environment: ``SURVEYGEN_<KEY>`` for every top-level key (``SURVEYGEN_MODEL``,
   ``SURVEYGEN_CONCURRENCY``, ``SURVEYGEN_FORMATS=md,tex`` ...), ``SURVEYGEN_MODEL_<STAGE>``
   for a per-stage model, and ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``, which the matching
   ``SURVEYGEN_*`` variable overrides. Empty variables count as unset; booleans accept
   1/0, true/false, yes/no. An unknown ``SURVEYGEN_*`` variable is ignored with a warning;
3. ``surveygen.toml`` in the working directory, or instead the file named by ``--config`` or
   ``SURVEYGEN_CONFIG`` (an explicit file replaces the working-directory file);
4. ``surveygen.toml`` in the user config directory (``~/.config/surveygen`` on Linux);
5. the built-in defaults.

Per-stage models (``[models]`` with ``gather``, ``skeleton``, ``digest``, ``refine``,
``write``) follow the same order: the highest source that sets either ``models.<stage>`` or
``model`` decides, and within one source the per-stage model wins. So ``--model X`` beats a
``[models]`` entry in a file, while that entry beats the file's own ``model``.

Relative paths in a file are relative to that file's folder; from flags or the environment,
to the working directory. Unknown keys and wrong values are errors that name the key and the
source. The API key is never shown: not in ``repr``, ``describe()``, nor in any error.

Example ``surveygen.toml``::

    model = "gpt-4o-mini"
    base_url = "http://localhost:8000/v1"
    concurrency = 4
    formats = ["md", "tex"]

    [models]
    write = "gpt-4o"

    [prices."my-local-model"]
    input = 0.0
    output = 0.0
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from surveygen.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

CONFIG_NAME = "surveygen.toml"
STAGES = ("gather", "skeleton", "digest", "refine", "write")
FORMATS = ("md", "tex", "html", "bib")
DEFAULT_MODEL = "gpt-4o-mini"
# Smallest model context surveygen works with, and the least room a prompt must keep once
# the answer's max_output_tokens are set aside.
MIN_CONTEXT_TOKENS = 4096
MIN_PROMPT_TOKENS = 2048
MIN_LENGTH, MAX_LENGTH = 300, 200_000
# Words of letters joined by spaces or hyphens, optionally a parenthesised variant:
# "English", "Simplified Chinese", "en-GB", "Portuguese (Brazil)". It goes into every prompt.
_LANGUAGE = r"^[^\W\d_]+(?:[ -][^\W\d_]+)*(?: \([^\W\d_]+(?: [^\W\d_]+)*\))?$"

_PosInt = Annotated[int, Field(ge=1)]
_Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def _default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("surveygen"))


@dataclass(frozen=True)
class Settings:
    """The effective settings of one run. ``Settings()`` is the built-in defaults."""

    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = 8
    timeout: float = 300.0
    max_tries: int = 6
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    budget: float | None = None
    cache: bool = True
    cache_dir: Path = field(default_factory=_default_cache_dir)
    temperature: float | None = None
    max_output_tokens: int = 4096
    stream: bool = False
    structured_output: str = "auto"
    engine: str = "llm"
    formats: tuple[str, ...] = ("md",)
    templates_dir: Path | None = None
    max_sections: int = 12
    max_papers: int = 60
    search_results: int = 50
    screen: bool = True
    screen_threshold: float = 4.0
    max_file_mb: float = 50.0
    arxiv_url: str = "https://export.arxiv.org/api/query"
    arxiv_delay: float = 3.0
    # Refinement (convolution layers, kernel width, outlines kept per layer, most candidate
    # outlines made per layer) and the weights of its score (see surveygen/scoring.py).
    layers: int = 3
    kernel: int = 3
    top_k: int = 3
    refine_candidates: int = 12
    weight_judge: float = 0.4
    weight_entropy: float = 0.2
    weight_coverage: float = 0.3
    weight_redundancy: float = 0.1
    # The model's context in tokens: longer papers are read with map/collapse/reduce.
    context_tokens: int = 32000
    # Writing: the total word budget (None: about WORDS_PER_PAPER per paper with evidence),
    # the survey's language, how citations look in survey.md/html, how each cited claim is
    # checked against the paper's evidence, whether references.bib lists every paper kept,
    # and the most comparison tables to try.
    length: int | None = None
    language: str = "English"
    citation_style: str = "numeric"
    verify: str = "lexical"
    bib_all: bool = False
    max_tables: int = 4
    # Effective model of every stage; stages left out are filled with ``model``.
    models: Mapping[str, str] = field(default_factory=dict)
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        models = {stage: self.models.get(stage, self.model) for stage in STAGES}
        prices = {name: MappingProxyType(dict(p)) for name, p in self.prices.items()}
        object.__setattr__(self, "models", MappingProxyType(models))
        object.__setattr__(self, "prices", MappingProxyType(prices))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        object.__setattr__(self, "formats", tuple(self.formats))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def model_for(self, stage: str) -> str:
        """The model the given pipeline stage calls."""
        if stage not in self.models:
            raise ConfigError(f"unknown stage {stage!r}{_suggest(stage, STAGES)}")
        return self.models[stage]

    def describe(self) -> dict[str, Any]:
        """A JSON-safe dump of the effective settings, with the API key masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = {k: dict(v) if isinstance(v, Mapping) else v for k, v in value.items()}
            out[f.name] = value
        out["api_key"] = "***" if self.api_key else None
        out["base_url"] = public_url(self.base_url)
        out["arxiv_url"] = public_url(self.arxiv_url)
        return out


def public_url(url: str | None) -> str | None:
    """``url`` without credentials: user:password and the query string (``?api-key=...``)."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username or parts.password:
        host = f"***@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "***" if parts.query else "", ""))


_SETTING_KEYS = tuple(f.name for f in fields(Settings) if f.name not in ("sources", "warnings"))
_SCALAR_KEYS = tuple(k for k in _SETTING_KEYS if k not in ("models", "prices"))
_PRICE_KEYS = ("input", "output")

_EXPECTED = {
    "model": "a non-empty model name",
    "base_url": "an http(s) URL such as http://localhost:8000/v1",
    "api_key": "a string",
    "timeout": "a number of seconds > 0",
    "retry_base_seconds": "a number of seconds >= 0",
    "retry_max_seconds": "a number of seconds >= 0",
    "budget": "a number of USD >= 0",
    "cache": "a boolean (true/false, yes/no, 1/0)",
    "stream": "a boolean (true/false, yes/no, 1/0)",
    "cache_dir": "a folder path",
    "templates_dir": "a folder path",
    "temperature": "a number from 0 to 2",
    "structured_output": 'one of "auto", "json_schema", "json_object", "text"',
    "engine": 'one of "llm", "extractive"',
    "screen": "a boolean (true/false, yes/no, 1/0)",
    "screen_threshold": "a number from 0 to 10",
    "max_file_mb": "a number of megabytes > 0",
    "arxiv_url": "an http(s) URL of arXiv's query API, such as https://export.arxiv.org/api/query",
    "arxiv_delay": "a number of seconds >= 0 between requests to arXiv",
    "layers": "an integer >= 0",
    "kernel": "an integer >= 2 (digests merged per kernel)",
    "context_tokens": f"an integer >= {MIN_CONTEXT_TOKENS}",
    "formats": 'a list of "md", "tex", "html", "bib" (or a string such as "md,tex")',
    "length": f"a number of words from {MIN_LENGTH} to {MAX_LENGTH}",
    "language": "a language name such as English, German or Simplified Chinese (letters, "
    "spaces, hyphens; at most 40 characters)",
    "citation_style": 'one of "numeric", "author-year", "pandoc"',
    "verify": 'one of "lexical", "llm"',
    "bib_all": "a boolean (true/false, yes/no, 1/0)",
    "max_tables": "an integer >= 0",
    "models": f"a table of stage = model name (stages: {', '.join(STAGES)})",
    "prices": 'a table [prices."MODEL"] with input and output in USD per million tokens',
}
for _key in (
    "concurrency",
    "max_tries",
    "max_output_tokens",
    "max_sections",
    "max_papers",
    "search_results",
    "top_k",
    "refine_candidates",
):
    _EXPECTED[_key] = "an integer >= 1"
for _key in ("weight_judge", "weight_entropy", "weight_coverage", "weight_redundancy"):
    _EXPECTED[_key] = "a number >= 0 (a weight of the outline score)"


class _StageModels(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gather: Annotated[str, Field(min_length=1)] | None = None
    skeleton: Annotated[str, Field(min_length=1)] | None = None
    digest: Annotated[str, Field(min_length=1)] | None = None
    refine: Annotated[str, Field(min_length=1)] | None = None
    write: Annotated[str, Field(min_length=1)] | None = None


class _Price(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: _Seconds  # same constraint: a finite number >= 0
    output: _Seconds


class _Layer(BaseModel):
    """What one source sets; ``None`` means this source does not set the key."""

    model_config = ConfigDict(extra="forbid")
    model: Annotated[str, Field(min_length=1)] | None = None
    base_url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    api_key: str | None = None
    concurrency: _PosInt | None = None
    timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    max_tries: _PosInt | None = None
    retry_base_seconds: _Seconds | None = None
    retry_max_seconds: _Seconds | None = None
    budget: _Seconds | None = None
    cache: bool | None = None
    cache_dir: Path | None = None
    temperature: Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)] | None = None
    max_output_tokens: _PosInt | None = None
    stream: bool | None = None
    structured_output: Literal["auto", "json_schema", "json_object", "text"] | None = None
    engine: Literal["llm", "extractive"] | None = None
    formats: Annotated[list[Literal["md", "tex", "html", "bib"]], Field(min_length=1)] | None = None
    templates_dir: Path | None = None
    max_sections: _PosInt | None = None
    max_papers: _PosInt | None = None
    search_results: _PosInt | None = None
    screen: bool | None = None
    screen_threshold: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)] | None = None
    max_file_mb: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    arxiv_url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    arxiv_delay: _Seconds | None = None
    layers: Annotated[int, Field(ge=0)] | None = None
    kernel: Annotated[int, Field(ge=2)] | None = None
    top_k: _PosInt | None = None
    refine_candidates: _PosInt | None = None
    weight_judge: _Seconds | None = None  # same constraint: a finite number >= 0
    weight_entropy: _Seconds | None = None
    weight_coverage: _Seconds | None = None
    weight_redundancy: _Seconds | None = None
    context_tokens: Annotated[int, Field(ge=MIN_CONTEXT_TOKENS)] | None = None
    length: Annotated[int, Field(ge=MIN_LENGTH, le=MAX_LENGTH)] | None = None
    language: Annotated[str, Field(pattern=_LANGUAGE, max_length=40)] | None = None
    citation_style: Literal["numeric", "author-year", "pandoc"] | None = None
    verify: Literal["lexical", "llm"] | None = None
    bib_all: bool | None = None
    max_tables: Annotated[int, Field(ge=0)] | None = None
    models: _StageModels | None = None
    prices: dict[str, _Price] | None = None

    @field_validator("base_url", "arxiv_url")
    @classmethod
    def _parsable_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)  # ValueError for a broken [IPv6] host
            if not parts.hostname:
                raise ValueError("no host")
            _ = parts.port  # ValueError for a port out of range
        return value

    @field_validator("formats", mode="before")
    @classmethod
    def _split_formats(cls, value: Any) -> Any:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        out: list[Any] = []
        for item in items:
            parts = item.split(",") if isinstance(item, str) else [item]
            for part in parts:
                part = part.strip().lower() if isinstance(part, str) else part
                if part != "" and part not in out:
                    out.append(part)
        return out


@dataclass
class _Source:
    """One layer of configuration before validation."""

    origin: str  # "flag", "env" or "file /path/surveygen.toml"
    base_dir: Path  # relative paths are resolved against this
    values: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # dotted key -> "env SURVEYGEN_X"
    parsed: _Layer = field(default_factory=_Layer)

    def label(self, key: str) -> str:
        return self.labels.get(key, self.origin)


def _suggest(word: str, candidates: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _where(label: str) -> str:
    return label[len("file ") :] if label.startswith("file ") else label


def _validate(source: _Source) -> None:
    try:
        source.parsed = _Layer.model_validate(source.values)
    except ValidationError as exc:
        raise ConfigError("\n".join(_explain(source, e) for e in exc.errors())) from None


def _explain(source: _Source, err: Any) -> str:
    loc = [str(part) for part in err["loc"] if not isinstance(part, int)]
    key = ".".join(loc)
    where = _where(source.labels.get(key) or source.label(loc[0] if loc else ""))
    if err["type"] == "extra_forbidden":
        if len(loc) == 1:
            candidates: tuple[str, ...] = _SETTING_KEYS
        else:
            candidates = STAGES if loc[0] == "models" else _PRICE_KEYS
        return f"{where}: unknown key {key!r}{_suggest(loc[-1], candidates)}"
    if err["type"] == "missing":
        return f"{where}: {key!r} is missing ({_EXPECTED.get(loc[0], 'required')})"
    got = "" if "api_key" in loc else f", got {_shown(loc, err['input'])!r:.60}"
    return f"{where}: {key!r} must be {_EXPECTED.get(loc[0], 'valid')}{got}"


def _shown(loc: list[str], value: Any) -> Any:
    """A rejected value as an error message may show it: URLs without their credentials."""
    if loc and loc[0] in ("base_url", "arxiv_url") and isinstance(value, str):
        try:
            return public_url(value)
        except ValueError:
            return "(a URL that cannot be parsed)"
    return value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: invalid TOML: the file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: invalid TOML: {exc}", hint="see https://toml.io for the syntax"
        ) from None


def _file_source(path: Path) -> _Source:
    source = _Source(origin=f"file {path}", base_dir=path.parent, values=_read_toml(path))
    _validate(source)
    return source


def _flag_source(flags: Mapping[str, Any], cwd: Path) -> _Source:
    source = _Source(origin="flag", base_dir=cwd)
    for key, value in flags.items():
        if value is None:
            continue
        if key == "models" and isinstance(value, Mapping):
            stages = {stage: m for stage, m in value.items() if m is not None}
            for stage in stages:
                source.labels[f"models.{stage}"] = f"flag --model-{stage}"
            value = stages
        source.values[key] = value
        source.labels[key] = f"flag --{key.replace('_', '-')}"
    _validate(source)
    return source


def _env_source(env: Mapping[str, str], cwd: Path) -> tuple[_Source, list[str]]:
    source = _Source(origin="env", base_dir=cwd)
    warnings: list[str] = []

    def put(key: str, name: str, value: str) -> None:
        if "." in key:
            source.values.setdefault("models", {})[key.split(".", 1)[1]] = value
        else:
            source.values[key] = value
        source.labels[key] = f"env {name}"

    for name, key in (("OPENAI_API_KEY", "api_key"), ("OPENAI_BASE_URL", "base_url")):
        if env.get(name, "").strip():
            put(key, name, env[name].strip())
    known = [f"SURVEYGEN_{k.upper()}" for k in _SCALAR_KEYS]
    known += [f"SURVEYGEN_MODEL_{s.upper()}" for s in STAGES] + ["SURVEYGEN_CONFIG"]
    for name in sorted(env):
        value = env[name].strip()
        if not name.startswith("SURVEYGEN_") or name == "SURVEYGEN_CONFIG" or not value:
            continue
        suffix = name[len("SURVEYGEN_") :].lower()
        if suffix in _SCALAR_KEYS:
            put(suffix, name, value)
        elif suffix.startswith("model_") and suffix[len("model_") :] in STAGES:
            put(f"models.{suffix[len('model_') :]}", name, value)
        else:
            warnings.append(f"ignoring unknown environment variable {name}{_suggest(name, known)}")
    _validate(source)
    return source, warnings


def _check_together(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Checks that involve two keys (each key alone was validated by its source)."""
    room = values["context_tokens"] - values["max_output_tokens"]
    if room < MIN_PROMPT_TOKENS:
        raise ConfigError(
            f"context_tokens ({values['context_tokens']}, from {_where(sources['context_tokens'])}"
            f") leaves {room} tokens for the prompt once max_output_tokens "
            f"({values['max_output_tokens']}, from {_where(sources['max_output_tokens'])}) are "
            f"set aside; at least {MIN_PROMPT_TOKENS} are needed",
            hint="raise --context-tokens to your model's context, or lower max_output_tokens",
        )
    weights = [values[k] for k in _WEIGHT_KEYS]
    if not any(weights):
        raise ConfigError(
            f"the outline score weights ({', '.join(_WEIGHT_KEYS)}) are all 0",
            hint="give at least one of them a positive value",
        )


_WEIGHT_KEYS = ("weight_judge", "weight_entropy", "weight_coverage", "weight_redundancy")


def _explicit_file(config_file: Path | None, env: Mapping[str, str], cwd: Path) -> Path | None:
    if config_file is not None:
        path, given_by = Path(config_file), "--config"
    elif env.get("SURVEYGEN_CONFIG", "").strip():
        path, given_by = Path(env["SURVEYGEN_CONFIG"].strip()), "SURVEYGEN_CONFIG"
    else:
        return None
    path = path.expanduser()
    path = path if path.is_absolute() else cwd / path
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (given by {given_by})")
    return path


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user_config_dir: Path | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge flags, environment, config files and defaults into one ``Settings``.

    ``flags`` maps key names (``"concurrency"``, ``"formats"``, ``"models"``: {stage: model},
    ...) to values; ``None`` means the flag was not given.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else Path(cwd)
    if user_config_dir is None:
        user_config_dir = Path(platformdirs.user_config_dir("surveygen"))

    env_source, warnings = _env_source(env, cwd)
    layers = [_flag_source(flags or {}, cwd), env_source]
    main_file = _explicit_file(config_file, env, cwd) or cwd / CONFIG_NAME
    user_file = Path(user_config_dir) / CONFIG_NAME
    seen: set[Path] = set()
    for path in (main_file, user_file):
        if path.is_file() and path.resolve() not in seen:
            seen.add(path.resolve())
            layers.append(_file_source(path))

    defaults = Settings()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in _SCALAR_KEYS:
        values[key], sources[key] = getattr(defaults, key), "default"
        for layer in layers:
            value = getattr(layer.parsed, key)
            if value is not None:
                if isinstance(value, Path):
                    value = value.expanduser()
                    value = value if value.is_absolute() else layer.base_dir / value
                values[key], sources[key] = value, layer.label(key)
                break

    models: dict[str, str] = {}
    for stage in STAGES:
        models[stage], sources[f"models.{stage}"] = DEFAULT_MODEL, "default"
        for layer in layers:
            per_stage = getattr(layer.parsed.models, stage, None)
            chosen = per_stage or layer.parsed.model
            if chosen is not None:
                models[stage] = chosen
                sources[f"models.{stage}"] = layer.label(
                    f"models.{stage}" if per_stage else "model"
                )
                break

    prices: dict[str, dict[str, float]] = {}
    for layer in reversed(layers):  # lowest first, so higher sources overwrite
        for name, price in (layer.parsed.prices or {}).items():
            prices[name] = price.model_dump()
            sources[f"prices.{name}"] = layer.label("prices")

    values["formats"] = tuple(values["formats"])
    _check_together(values, sources)
    return Settings(
        **values, models=models, prices=prices, sources=sources, warnings=tuple(warnings)
    )
