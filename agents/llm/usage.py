"""What LLM calls used: tokens (`Usage`) and running totals of tokens and cost (`Spend`), the one
way every caller sums them (a DAG execution's nodes, a run's steps, a planning's attempts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "totalTokens": self.total_tokens,
        }

    def add(self, other: Usage | None) -> Usage:
        if other is None:
            return self
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Usage | None:
        """A usage from its wire shape (camelCase) or the providers' snake_case; None if absent."""
        if not data:
            return None

        def number(*keys: str) -> int:
            for key in keys:
                value = data.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return int(value)
            return 0

        prompt = number("promptTokens", "prompt_tokens")
        completion = number("completionTokens", "completion_tokens")
        total = number("totalTokens", "total_tokens") or prompt + completion
        return cls(prompt, completion, total)

    @classmethod
    def sum(cls, usages: Iterable[Usage | Mapping[str, Any] | None]) -> Usage | None:
        """The field-wise sum of the usages given (dicts accepted); None when none is present."""
        total: Usage | None = None
        for item in usages:
            usage = cls.from_dict(item) if isinstance(item, Mapping) else item
            if usage is not None:
                total = usage if total is None else total.add(usage)
        return total


@dataclass(frozen=True)
class Spend:
    """Tokens and USD cost summed over calls; None where nothing was reported yet (a call
    without usage or without a known price adds nothing to that part)."""

    usage: Usage | None = None
    cost_usd: Decimal | None = None

    @classmethod
    def of(cls, usage: Mapping[str, Any] | None, cost_usd: Decimal | None) -> Spend:
        """Totals as stored on a row (usage in its wire shape)."""
        return cls(Usage.from_dict(usage), cost_usd)

    def plus(self, usage: Usage | Mapping[str, Any] | None, cost_usd: Decimal | None) -> Spend:
        """These totals with one more call's usage and cost added."""
        added = Usage.from_dict(usage) if isinstance(usage, Mapping) else usage
        return Spend(
            self.usage if added is None else Usage.sum([self.usage, added]),
            self.cost_usd if cost_usd is None else (self.cost_usd or Decimal(0)) + cost_usd,
        )

    def usage_dict(self) -> dict[str, int] | None:
        return self.usage.as_dict() if self.usage else None
