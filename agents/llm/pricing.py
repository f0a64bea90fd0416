"""USD cost of a call: the provider's reported cost, else a price table.

The bundled table (`prices.json` beside this module, USD per million tokens) covers common
OpenAI and OpenRouter models; local Ollama models cost 0. The file named by the
`LLM_PRICES_FILE` setting, when it exists, is laid over it entry by entry (it is re-read when it
changes, so `manage.py refresh_llm_prices` takes effect without a restart).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from agents.llm.providers import ALIASES

if TYPE_CHECKING:
    from agents.llm.usage import Usage

logger = logging.getLogger(__name__)

BUNDLED_PRICES_FILE = Path(__file__).with_name("prices.json")
PRICE_UNIT = "USD per million tokens"
MILLION = Decimal(1_000_000)
ZERO = Decimal(0)

# provider -> model -> price
PriceTable = dict[str, dict[str, "ModelPrice"]]


@dataclass(frozen=True)
class ModelPrice:
    prompt: Decimal  # USD per million prompt tokens
    completion: Decimal  # USD per million completion tokens

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / MILLION


FREE = ModelPrice(ZERO, ZERO)

_lock = threading.Lock()
_cache: dict[str, Any] = {"key": None, "table": None}


def _decimal(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    if not number.is_finite() or number < 0:
        return None
    return number


def parse_price_table(document: Any) -> PriceTable:
    """The `providers` section of a price file; malformed entries are skipped with a warning."""
    table: PriceTable = {}
    providers = document.get("providers") if isinstance(document, dict) else None
    if not isinstance(providers, dict):
        raise ValueError('a price file needs a "providers" object')
    for provider, models in providers.items():
        if not isinstance(models, dict):
            continue
        entries = table.setdefault(ALIASES.get(provider) or provider, {})
        for model, price in models.items():
            prompt = _decimal(price.get("prompt")) if isinstance(price, dict) else None
            completion = _decimal(price.get("completion")) if isinstance(price, dict) else None
            if prompt is None or completion is None:
                logger.warning("price table: skipping malformed entry %s/%s", provider, model)
                continue
            entries[model.lower()] = ModelPrice(prompt, completion)
    return table


def _read(path: Path) -> PriceTable:
    return parse_price_table(json.loads(path.read_text(encoding="utf-8")))


def _file_key(path: Path | None) -> tuple[Any, ...] | None:
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    # The inode changes on every atomic replace, even within one mtime tick.
    return (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)


def override_path() -> Path | None:
    name = getattr(settings, "LLM_PRICES_FILE", "") or ""
    return Path(name) if name else None


def price_table() -> PriceTable:
    """The bundled table with the override file laid over it (cached until either changes)."""
    override = override_path()
    key = (_file_key(BUNDLED_PRICES_FILE), _file_key(override))
    with _lock:
        if _cache["key"] == key and _cache["table"] is not None:
            return _cache["table"]
    table = _read(BUNDLED_PRICES_FILE)
    if key[1] is not None and override is not None:
        try:
            for provider, models in _read(override).items():
                table.setdefault(provider, {}).update(models)
        except (OSError, ValueError) as error:
            logger.warning("ignoring unreadable price file %s: %s", override, error)
    with _lock:
        _cache.update(key=key, table=table)
    return table


def _longest_prefix(models: dict[str, ModelPrice], name: str) -> ModelPrice | None:
    """A dated or suffixed snapshot (`gpt-4o-mini-2024-07-18`) priced as its family."""
    best: tuple[int, ModelPrice] | None = None
    for key, price in models.items():
        if key != "*" and name.startswith(key + "-") and (best is None or len(key) > best[0]):
            best = (len(key), price)
    return best[1] if best else None


def model_price(provider: str, model: str) -> ModelPrice | None:
    """The price of `model` at `provider`, or None when the table does not know it."""
    provider = ALIASES.get(provider, provider)
    table = price_table()
    models = table.get(provider, {})
    name = (model or "").strip().lower()
    if provider == "openrouter":
        base, _, variant = name.partition(":")
        if variant == "free":
            return FREE
        name = base
    price = models.get(name) or _longest_prefix(models, name)
    if price is None and provider == "openrouter" and name.startswith("openai/"):
        openai_models = table.get("openai", {})
        short = name.removeprefix("openai/")
        price = openai_models.get(short) or _longest_prefix(openai_models, short)
    if price is None:
        price = models.get("*")
    if price is None and provider == "ollama":
        price = FREE  # local models cost nothing
    return price


def cost_usd(
    provider: str, model: str, usage: Usage | None, reported: float | str | None = None
) -> Decimal | None:
    """The cost in USD: the provider's reported figure when given, else price table x usage."""
    if reported is not None:
        reported_cost = _decimal(reported)
        if reported_cost is not None:
            return reported_cost
    if usage is None:
        return None
    price = model_price(provider, model)
    if price is None:
        return None
    return price.cost(usage.prompt_tokens, usage.completion_tokens)


def write_price_file(
    path: Path, providers: dict[str, dict[str, dict[str, str]]], **info: Any
) -> None:
    """Write an override file atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"unit": PRICE_UNIT, **info, "providers": providers}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def read_price_document(path: Path) -> dict[str, Any]:
    """The raw override document, or an empty one when the file is absent or unreadable."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}
