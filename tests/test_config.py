"""The configuration layer: precedence, per-stage models, validation messages, secrecy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from surveygen.config import STAGES, Settings, load_settings
from surveygen.errors import ConfigError

SECRET = "sk-test-very-secret-123"


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    cwd, user = tmp_path / "project", tmp_path / "userconf"
    cwd.mkdir()
    user.mkdir()
    return cwd, user


def write(folder: Path, text: str, name: str = "surveygen.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def load(
    dirs: tuple[Path, Path],
    flags: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    **kwargs: Any,
) -> Settings:
    cwd, user = dirs
    return load_settings(flags, env=env or {}, cwd=cwd, user_config_dir=user, **kwargs)


def config_error(dirs: tuple[Path, Path], **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(dirs, **kwargs)
    return str(info.value)


# --- precedence -------------------------------------------------------------------------------


def test_defaults(dirs: tuple[Path, Path]) -> None:
    s = load(dirs)
    assert s.model == "gpt-4o-mini"
    assert (s.concurrency, s.timeout, s.max_tries) == (8, 300.0, 6)
    assert (s.retry_base_seconds, s.retry_max_seconds) == (1.0, 60.0)
    assert s.base_url is None and s.api_key is None and s.budget is None
    assert s.temperature is None and s.templates_dir is None
    assert s.cache is True and s.stream is False
    assert s.cache_dir.name == "surveygen" and s.cache_dir.is_absolute()
    assert s.structured_output == "auto" and s.engine == "llm"
    assert s.formats == ("md",)
    assert (s.max_output_tokens, s.max_sections) == (4096, 12)
    assert dict(s.prices) == {} and s.warnings == ()
    assert all(source == "default" for source in s.sources.values())
    assert load(dirs) == Settings(cache_dir=s.cache_dir, sources=s.sources)


def test_each_layer_beats_the_next(dirs: tuple[Path, Path]) -> None:
    cwd, user = dirs
    assert load(dirs).concurrency == 8
    user_file = write(user, "concurrency = 2\n")
    s = load(dirs)
    assert s.concurrency == 2 and s.sources["concurrency"] == f"file {user_file}"
    cwd_file = write(cwd, "concurrency = 3\n")
    s = load(dirs)
    assert s.concurrency == 3 and s.sources["concurrency"] == f"file {cwd_file}"
    env = {"SURVEYGEN_CONCURRENCY": "4"}
    s = load(dirs, env=env)
    assert s.concurrency == 4 and s.sources["concurrency"] == "env SURVEYGEN_CONCURRENCY"
    s = load(dirs, {"concurrency": 5}, env)
    assert s.concurrency == 5 and s.sources["concurrency"] == "flag --concurrency"


def test_layers_merge_key_by_key(dirs: tuple[Path, Path]) -> None:
    cwd, user = dirs
    write(user, 'model = "user-model"\ntimeout = 10\nstream = true\n')
    write(cwd, "timeout = 20\n")
    s = load(dirs, {"max_tries": 2}, {"SURVEYGEN_BUDGET": "1.5"})
    assert (s.model, s.timeout, s.stream, s.max_tries, s.budget) == ("user-model", 20, True, 2, 1.5)


def test_none_flags_do_not_mask_lower_layers(dirs: tuple[Path, Path]) -> None:
    write(dirs[0], 'model = "file-model"\n')
    s = load(dirs, {"model": None, "concurrency": None, "models": {"write": None}})
    assert s.model == "file-model" and s.concurrency == 8
    assert s.model_for("write") == "file-model"


def test_empty_env_values_count_as_unset(dirs: tuple[Path, Path]) -> None:
    write(dirs[0], 'model = "file-model"\n')
    env = {"SURVEYGEN_MODEL": "", "SURVEYGEN_API_KEY": "  ", "OPENAI_API_KEY": SECRET}
    s = load(dirs, env=env | {"SURVEYGEN_BUDGET": "", "SURVEYGEN_CONFIG": ""})
    assert s.model == "file-model" and s.budget is None
    assert s.api_key == SECRET and s.sources["api_key"] == "env OPENAI_API_KEY"
    assert s.warnings == ()


def test_surveygen_env_beats_openai_env(dirs: tuple[Path, Path]) -> None:
    env = {"OPENAI_API_KEY": "sk-openai", "OPENAI_BASE_URL": "http://openai.example/v1"}
    s = load(dirs, env=env)
    assert (s.api_key, s.base_url) == ("sk-openai", "http://openai.example/v1")
    assert s.sources["base_url"] == "env OPENAI_BASE_URL"
    env |= {"SURVEYGEN_API_KEY": "sk-mine", "SURVEYGEN_BASE_URL": "http://localhost:8000/v1"}
    s = load(dirs, env=env)
    assert (s.api_key, s.base_url) == ("sk-mine", "http://localhost:8000/v1")
    assert s.sources["api_key"] == "env SURVEYGEN_API_KEY"
    assert s.sources["base_url"] == "env SURVEYGEN_BASE_URL"


def test_explicit_config_file_replaces_the_cwd_file(dirs: tuple[Path, Path]) -> None:
    cwd, user = dirs
    write(user, "concurrency = 2\nmax_tries = 9\n")
    write(cwd, "concurrency = 3\ntimeout = 7\n")
    other = write(cwd, "concurrency = 4\n", name="other.toml")
    for kwargs in ({"config_file": other}, {"env": {"SURVEYGEN_CONFIG": "other.toml"}}):
        s = load(dirs, **kwargs)
        assert s.concurrency == 4 and s.sources["concurrency"] == f"file {other}"
        assert s.timeout == 300.0  # the cwd file is not read at all
        assert s.max_tries == 9  # the user file still is
    s = load(dirs, {"concurrency": 1}, {"SURVEYGEN_CONCURRENCY": "5"}, config_file=other)
    assert s.concurrency == 1
    s = load(dirs, env={"SURVEYGEN_CONCURRENCY": "5", "SURVEYGEN_CONFIG": str(other)})
    assert s.concurrency == 5


def test_config_file_argument_beats_surveygen_config(dirs: tuple[Path, Path]) -> None:
    a = write(dirs[0], "concurrency = 4\n", name="a.toml")
    write(dirs[0], "concurrency = 5\n", name="b.toml")
    assert load(dirs, env={"SURVEYGEN_CONFIG": "b.toml"}, config_file=a).concurrency == 4


def test_missing_explicit_config_file(dirs: tuple[Path, Path]) -> None:
    message = config_error(dirs, env={"SURVEYGEN_CONFIG": "nope.toml"})
    assert "nope.toml" in message and "SURVEYGEN_CONFIG" in message


# --- per-stage models -------------------------------------------------------------------------


def test_per_stage_model_in_file_beats_file_model_and_default(dirs: tuple[Path, Path]) -> None:
    path = write(dirs[0], 'model = "base"\n[models]\nwrite = "big"\n')
    s = load(dirs)
    assert s.model_for("write") == "big" and s.model_for("gather") == "base"
    assert s.sources["models.write"] == f"file {path}"
    assert dict(s.models) == {stage: "big" if stage == "write" else "base" for stage in STAGES}


def test_flag_model_beats_per_stage_model_from_file(dirs: tuple[Path, Path]) -> None:
    write(dirs[0], 'model = "base"\n[models]\nwrite = "big"\n')
    s = load(dirs, {"model": "cli"})
    assert all(s.model_for(stage) == "cli" for stage in STAGES)
    assert s.sources["models.write"] == "flag --model"


def test_per_stage_from_lower_file_loses_to_model_from_higher_file(
    dirs: tuple[Path, Path],
) -> None:
    cwd, user = dirs
    write(user, '[models]\ndigest = "user-digest"\nrefine = "user-refine"\n')
    write(cwd, 'model = "project"\n[models]\nrefine = "project-refine"\n')
    s = load(dirs)
    assert s.model_for("digest") == "project"
    assert s.model_for("refine") == "project-refine"
    assert s.model_for("gather") == "project"


def test_per_stage_file_model_with_default_model(dirs: tuple[Path, Path]) -> None:
    write(dirs[1], '[models]\nskeleton = "sk-model"\n')
    s = load(dirs)
    assert s.model_for("skeleton") == "sk-model" and s.model_for("write") == "gpt-4o-mini"
    assert s.sources["models.write"] == "default"


def test_per_stage_env_and_flags(dirs: tuple[Path, Path]) -> None:
    write(dirs[0], '[models]\nwrite = "file-write"\n')
    env = {"SURVEYGEN_MODEL": "env-model", "SURVEYGEN_MODEL_WRITE": "env-write"}
    s = load(dirs, env=env)
    assert s.model_for("write") == "env-write" and s.model_for("digest") == "env-model"
    assert s.sources["models.write"] == "env SURVEYGEN_MODEL_WRITE"
    s = load(dirs, {"models": {"digest": "flag-digest"}}, env)
    assert s.model_for("digest") == "flag-digest" and s.model_for("write") == "env-write"
    assert s.sources["models.digest"] == "flag --model-digest"


def test_model_for_unknown_stage() -> None:
    with pytest.raises(ConfigError, match="did you mean 'write'"):
        Settings().model_for("wrte")


def test_settings_constructor_fills_stages_from_model() -> None:
    s = Settings(model="m", models={"write": "w"})
    assert s.model_for("write") == "w" and s.model_for("gather") == "m"


# --- values and conversions -------------------------------------------------------------------


def test_full_file_is_read(dirs: tuple[Path, Path]) -> None:
    cwd = dirs[0]
    write(
        cwd,
        """
        base_url = "http://localhost:8000/v1"
        timeout = 12.5
        budget = 2
        cache = false
        cache_dir = "cache"
        temperature = 0.3
        structured_output = "json_object"
        engine = "extractive"
        formats = ["tex", "md"]
        templates_dir = "~/tpl"
        max_sections = 5
        [prices."local/llama"]
        input = 0.1
        output = 0.2
        """.replace("        ", ""),
    )
    s = load(dirs)
    assert s.base_url == "http://localhost:8000/v1" and s.timeout == 12.5 and s.budget == 2.0
    assert s.cache is False and s.cache_dir == cwd / "cache"
    assert s.temperature == 0.3 and s.structured_output == "json_object"
    assert s.engine == "extractive" and s.formats == ("tex", "md") and s.max_sections == 5
    assert s.templates_dir == Path("~/tpl").expanduser()
    assert dict(s.prices["local/llama"]) == {"input": 0.1, "output": 0.2}


def test_relative_paths_resolve_against_the_file_or_cwd(dirs: tuple[Path, Path]) -> None:
    cwd, user = dirs
    write(user, 'cache_dir = "c"\ntemplates_dir = "t"\n')
    s = load(dirs, env={"SURVEYGEN_TEMPLATES_DIR": "mine"})
    assert s.cache_dir == user / "c" and s.templates_dir == cwd / "mine"


def test_prices_merge_per_model(dirs: tuple[Path, Path]) -> None:
    cwd, user = dirs
    write(user, "[prices.a]\ninput = 1\noutput = 2\n[prices.b]\ninput = 3\noutput = 4\n")
    write(cwd, "[prices.a]\ninput = 5\noutput = 6\n")
    s = load(dirs)
    assert {k: dict(v) for k, v in s.prices.items()} == {
        "a": {"input": 5.0, "output": 6.0},
        "b": {"input": 3.0, "output": 4.0},
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [("md,tex", ("md", "tex")), (" html , bib ", ("html", "bib")), ("MD,md", ("md",))],
)
def test_formats_from_string(dirs: tuple[Path, Path], value: str, expected: tuple) -> None:
    assert load(dirs, env={"SURVEYGEN_FORMATS": value}).formats == expected
    assert load(dirs, {"formats": value}).formats == expected


def test_formats_from_repeated_flags(dirs: tuple[Path, Path]) -> None:
    assert load(dirs, {"formats": ("md,tex", "bib")}).formats == ("md", "tex", "bib")


def test_unknown_format(dirs: tuple[Path, Path]) -> None:
    message = config_error(dirs, env={"SURVEYGEN_FORMATS": "md,pdf"})
    assert "env SURVEYGEN_FORMATS" in message and "'formats'" in message and '"bib"' in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("0", False), ("true", True), ("False", False), ("yes", True), ("NO", False)],
)
def test_bool_env_parsing(dirs: tuple[Path, Path], raw: str, expected: bool) -> None:
    s = load(dirs, env={"SURVEYGEN_CACHE": raw, "SURVEYGEN_STREAM": raw})
    assert s.cache is expected and s.stream is expected


def test_numbers_from_env(dirs: tuple[Path, Path]) -> None:
    env = {"SURVEYGEN_TIMEOUT": "30", "SURVEYGEN_TEMPERATURE": "0.7", "SURVEYGEN_MAX_TRIES": "3"}
    s = load(dirs, env=env)
    assert (s.timeout, s.temperature, s.max_tries) == (30.0, 0.7, 3)


# --- errors and warnings ----------------------------------------------------------------------


def test_unknown_top_level_key_with_suggestion(dirs: tuple[Path, Path]) -> None:
    write(dirs[0], "concurency = 4\n")
    message = config_error(dirs)
    assert "surveygen.toml: unknown key 'concurency'" in message
    assert "did you mean 'concurrency'?" in message


def test_unknown_stage_in_models_table(dirs: tuple[Path, Path]) -> None:
    write(dirs[1], '[models]\nwriting = "x"\n')
    message = config_error(dirs)
    assert str(dirs[1] / "surveygen.toml") in message
    assert "unknown key 'models.writing'" in message and "did you mean 'write'?" in message


def test_unknown_key_in_price_table(dirs: tuple[Path, Path]) -> None:
    write(dirs[0], "[prices.m]\ninput = 1\noutptu = 2\n")
    message = config_error(dirs)
    assert "'prices.m.outptu'" in message and "did you mean 'output'?" in message


def test_unknown_flag(dirs: tuple[Path, Path]) -> None:
    assert "flag --colour: unknown key 'colour'" in config_error(dirs, flags={"colour": True})


def test_unknown_env_variable_is_a_warning(dirs: tuple[Path, Path]) -> None:
    env = {"SURVEYGEN_CONCURENCY": "4", "SURVEYGEN_MODEL_WRTE": "x", "OTHER_THING": "1"}
    s = load(dirs, env=env)
    assert s.concurrency == 8
    assert len(s.warnings) == 2
    assert "SURVEYGEN_CONCURENCY" in s.warnings[0] and "SURVEYGEN_CONCURRENCY" in s.warnings[0]
    assert "SURVEYGEN_MODEL_WRTE" in s.warnings[1] and "SURVEYGEN_MODEL_WRITE" in s.warnings[1]


@pytest.mark.parametrize(
    ("toml", "key", "expected"),
    [
        ('concurrency = "many"\n', "'concurrency'", "an integer >= 1"),
        ("concurrency = 0\n", "'concurrency'", "an integer >= 1"),
        ("timeout = 0\n", "'timeout'", "> 0"),
        ("temperature = 3\n", "'temperature'", "from 0 to 2"),
        ('engine = "magic"\n', "'engine'", '"extractive"'),
        ("model = 5\n", "'model'", "model name"),
        ('base_url = "localhost:8000"\n', "'base_url'", "http(s) URL"),
        ("[models]\nwrite = 1\n", "'models.write'", "stage = model"),
        ("[prices.m]\ninput = 1\n", "'prices.m.output'", "missing"),
        ("models = 3\n", "'models'", "stage = model"),
    ],
)
def test_wrong_value_in_file(dirs: tuple[Path, Path], toml: str, key: str, expected: str) -> None:
    path = write(dirs[0], toml)
    message = config_error(dirs)
    assert message.startswith(f"{path}: ") and key in message and expected in message


def test_wrong_value_in_env_and_flag_names_the_source(dirs: tuple[Path, Path]) -> None:
    message = config_error(dirs, env={"SURVEYGEN_MAX_TRIES": "often"})
    assert message.startswith("env SURVEYGEN_MAX_TRIES: 'max_tries' must be an integer >= 1")
    assert "'often'" in message
    message = config_error(dirs, flags={"retry_max_seconds": -1})
    assert message.startswith("flag --retry-max-seconds: 'retry_max_seconds' must be")
    message = config_error(dirs, env={"SURVEYGEN_CACHE": "maybe"})
    assert "env SURVEYGEN_CACHE" in message and "boolean" in message


def test_invalid_toml_names_file_and_line(dirs: tuple[Path, Path]) -> None:
    path = write(dirs[0], 'model = "ok"\nconcurrency = = 3\n')
    message = config_error(dirs)
    assert str(path) in message and "invalid TOML" in message and "line 2" in message


def test_config_file_that_is_not_utf8(dirs: tuple[Path, Path]) -> None:
    other = dirs[0] / "bad.toml"
    other.write_bytes(b'model = "\xff"\n')
    message = config_error(dirs, config_file=other)
    assert "bad.toml" in message and "invalid TOML" in message


# --- secrecy and reporting --------------------------------------------------------------------


def test_api_key_never_shown(dirs: tuple[Path, Path]) -> None:
    write(dirs[0], f'api_key = "{SECRET}"\n')
    s = load(dirs)
    assert s.api_key == SECRET and s.sources["api_key"] == f"file {dirs[0] / 'surveygen.toml'}"
    assert SECRET not in repr(s) and SECRET not in str(s)
    described = s.describe()
    assert described["api_key"] == "***" and SECRET not in json.dumps(described)
    assert SECRET not in " ".join(s.sources.values())
    assert load(dirs, {"api_key": None}).describe()["api_key"] == "***"
    assert Settings().describe()["api_key"] is None


def test_api_key_not_echoed_in_errors(dirs: tuple[Path, Path]) -> None:
    write(dirs[0], f'api_key = ["{SECRET}"]\n')
    message = config_error(dirs)
    assert "'api_key'" in message and SECRET not in message
    message = config_error(dirs, flags={"api_key": {"k": SECRET}})
    assert "flag --api-key" in message and SECRET not in message
    write(dirs[0], f'api_kee = "{SECRET}"\n')
    message = config_error(dirs)
    assert "'api_kee'" in message and SECRET not in message


def test_describe_is_json_safe(dirs: tuple[Path, Path]) -> None:
    write(dirs[0], '[models]\nwrite = "w"\n[prices.m]\ninput = 1\noutput = 2\n')
    s = load(dirs, {"templates_dir": "tpl", "formats": "md,bib"})
    described = json.loads(json.dumps(s.describe()))
    assert described["formats"] == ["md", "bib"]
    assert described["templates_dir"] == str(dirs[0] / "tpl")
    assert described["models"]["write"] == "w" and described["prices"]["m"]["output"] == 2.0
    assert described["sources"]["templates_dir"] == "flag --templates-dir"


def test_settings_are_immutable(dirs: tuple[Path, Path]) -> None:
    s = load(dirs)
    with pytest.raises(AttributeError):
        s.model = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.models["write"] = "x"  # type: ignore[index]


def test_describe_hides_credentials_in_the_endpoint_url() -> None:
    from surveygen.config import Settings

    settings = Settings(base_url="https://user:tok3n@llm.example.org:8443/v1?api-key=s3cret")
    shown = settings.describe()["base_url"]
    assert "tok3n" not in shown and "s3cret" not in shown and "user" not in shown
    assert shown == "https://***@llm.example.org:8443/v1?***"
    assert Settings(base_url="http://localhost:8000/v1").describe()["base_url"] == (
        "http://localhost:8000/v1"
    )
