"""The one hierarchy of errors surveygen raises; the CLI maps them to exit codes in one place.

    SurveygenError                 base; ``exit_code`` is what the CLI exits with
    ├── UsageError (2)             bad flag, bad input file, bad configuration
    │   ├── ConfigError            unknown key, wrong type, unreadable surveygen.toml
    │   ├── InputError             a papers file, an outline file, a topic the tool cannot use
    │   ├── NotImplementedYet      an option that a later release implements
    │   └── NoEndpointError        no LLM endpoint and no API key configured
    └── RunError (1)               the run started and could not finish; state is kept
        ├── LLMError               a model call failed for good (after retries)
        │   ├── LLMParseError      the answer did not parse, even after the repair retry
        │   └── LLMRejectedError   the endpoint refused the request (4xx other than 429)
        ├── BudgetExceeded         the next call would cross --budget
        └── OutputError            the run directory cannot be written

Every message names the fix: the flag, file or key to change.
"""

from __future__ import annotations


class SurveygenError(Exception):
    """Base of every error surveygen raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(SurveygenError):
    exit_code = 2


class ConfigError(UsageError):
    pass


class InputError(UsageError):
    pass


class NotImplementedYet(UsageError):
    def __init__(self, what: str, *, coming: str = "a later release") -> None:
        super().__init__(f"{what} is not implemented yet (coming with {coming}).")


class NoEndpointError(UsageError):
    pass


class RunError(SurveygenError):
    exit_code = 1


class LLMError(RunError):
    pass


class LLMParseError(LLMError):
    pass


class LLMRejectedError(LLMError):
    pass


class BudgetExceeded(RunError):
    pass


class OutputError(RunError):
    pass
