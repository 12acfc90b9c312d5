"""Token and cost accounting per stage and model, and the ``--budget`` guard.

Prices are USD per million tokens. The built-in table covers common OpenAI models; entries in
``[prices."MODEL"]`` of surveygen.toml override or extend it. A model matches the longest
table entry it starts with (``gpt-4o-2024-08-06`` is priced as ``gpt-4o``). Models with no
price (local vLLM or Ollama servers, say) cost 0, and the report says their price is unknown.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from surveygen.errors import BudgetExceeded

# USD per 1M tokens (input, output), from the providers' public price lists.
BUILTIN_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
}


def price_table(
    overrides: Mapping[str, Mapping[str, float]] | None,
) -> dict[str, tuple[float, float]]:
    table = dict(BUILTIN_PRICES)
    for model, price in (overrides or {}).items():
        table[model] = (float(price.get("input", 0.0)), float(price.get("output", 0.0)))
    return table


def lookup_price(
    table: Mapping[str, tuple[float, float]], model: str
) -> tuple[float, float] | None:
    if model in table:
        return table[model]
    # Strip a provider prefix ("openai/gpt-4o" on OpenRouter) and dated suffixes by prefix match.
    name = model.rsplit("/", 1)[-1]
    matches = [entry for entry in table if name.startswith(entry)]
    return table[max(matches, key=len)] if matches else None


@dataclass
class LedgerLine:
    calls: int = 0
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    errors: int = 0


@dataclass
class Ledger:
    """Accumulates usage; thread-safe enough for one event loop plus worker threads."""

    prices: Mapping[str, tuple[float, float]]
    budget: float | None = None
    lines: dict[tuple[str, str], LedgerLine] = field(default_factory=dict)
    unknown_price_models: set[str] = field(default_factory=set)
    _reserved: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cost_of(self, model: str, tokens_in: int, tokens_out: int) -> float:
        price = lookup_price(self.prices, model)
        if price is None:
            self.unknown_price_models.add(model)
            return 0.0
        return (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000

    @property
    def spent(self) -> float:
        return sum(line.cost for line in self.lines.values())

    def reserve(self, model: str, est_in: int, max_out: int) -> float:
        """Claim a call's worst-case cost before sending it; refuse if it would cross the budget.

        The reservation covers calls in flight, so concurrent calls cannot overshoot together.
        """
        estimate = self.cost_of(model, est_in, max_out)
        with self._lock:
            if self.budget is not None and self.spent + self._reserved + estimate > self.budget:
                raise BudgetExceeded(
                    f"stopping before a {model} call that could cost up to ${estimate:.4f}: "
                    f"${self.spent:.4f} spent of the ${self.budget:.2f} budget",
                    hint="answers already paid for are cached; raise --budget and rerun "
                    "the same command with --resume to continue",
                )
            self._reserved += estimate
        return estimate

    def release(self, estimate: float) -> None:
        with self._lock:
            self._reserved = max(0.0, self._reserved - estimate)

    def record(
        self,
        stage: str,
        model: str,
        *,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cache_hit: bool = False,
        error: bool = False,
    ) -> float:
        cost = 0.0 if cache_hit else self.cost_of(model, tokens_in, tokens_out)
        with self._lock:
            line = self.lines.setdefault((stage, model), LedgerLine())
            if cache_hit:
                line.cache_hits += 1
            else:
                line.calls += 1
                line.tokens_in += tokens_in
                line.tokens_out += tokens_out
                line.cost += cost
            if error:
                line.errors += 1
        return cost

    def totals(self) -> LedgerLine:
        total = LedgerLine()
        for line in self.lines.values():
            total.calls += line.calls
            total.cache_hits += line.cache_hits
            total.tokens_in += line.tokens_in
            total.tokens_out += line.tokens_out
            total.cost += line.cost
            total.errors += line.errors
        return total

    def to_json(self) -> dict:
        total = self.totals()
        return {
            "calls": total.calls,
            "cache_hits": total.cache_hits,
            "tokens_in": total.tokens_in,
            "tokens_out": total.tokens_out,
            "cost_usd": round(total.cost, 6),
            "errors": total.errors,
            "unknown_price_models": sorted(self.unknown_price_models),
            "by_stage_model": [
                {
                    "stage": stage,
                    "model": model,
                    "calls": line.calls,
                    "cache_hits": line.cache_hits,
                    "tokens_in": line.tokens_in,
                    "tokens_out": line.tokens_out,
                    "cost_usd": round(line.cost, 6),
                    "errors": line.errors,
                }
                for (stage, model), line in sorted(self.lines.items())
            ],
        }
