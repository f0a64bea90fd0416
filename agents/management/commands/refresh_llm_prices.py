"""`manage.py refresh_llm_prices`: fetch OpenRouter's model prices into the override file.

This is the only part of the price table that touches the network, and only when run.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from agents.llm.pricing import override_path, read_price_document, write_price_file
from agents.llm.providers import provider_base_url

PER_MILLION = Decimal(1_000_000)


def _per_million(value: Any) -> str | None:
    """OpenRouter quotes USD per token as a string; -1 means variable pricing (skipped)."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    if not number.is_finite() or number < 0:
        return None
    return format((number * PER_MILLION).normalize(), "f")


def openrouter_prices(document: Any) -> dict[str, dict[str, str]]:
    models = document.get("data") if isinstance(document, dict) else None
    if not isinstance(models, list):
        raise ValueError('the reply has no "data" list of models')
    prices: dict[str, dict[str, str]] = {}
    for entry in models:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        pricing = entry.get("pricing") or {}
        prompt = _per_million(pricing.get("prompt"))
        completion = _per_million(pricing.get("completion"))
        if prompt is not None and completion is not None:
            prices[entry["id"]] = {"prompt": prompt, "completion": completion}
    return prices


class Command(BaseCommand):
    help = (
        "Download OpenRouter's current model prices (USD per million tokens) into the price "
        "override file (LLM_PRICES_FILE). Other providers' entries in that file are kept."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--url", help="Models endpoint to read (default: OPENROUTER_BASE_URL + /models)."
        )
        parser.add_argument("--output", help="File to write (default: LLM_PRICES_FILE).")
        parser.add_argument("--timeout", type=float, default=30.0, help="Seconds to wait.")

    def handle(self, *args, **options) -> None:
        url = options["url"] or provider_base_url("openrouter") + "/models"
        output = Path(options["output"]) if options["output"] else override_path()
        if output is None:
            raise CommandError("No output file: set LLM_PRICES_FILE or pass --output.")
        headers = {"Accept": "application/json", "User-Agent": "async-agent/refresh_llm_prices"}
        if settings.OPENROUTER_API_KEY:
            headers["Authorization"] = f"Bearer {settings.OPENROUTER_API_KEY}"
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=options["timeout"]) as response:
                document = json.loads(response.read())
            prices = openrouter_prices(document)
        except urllib.error.HTTPError as error:
            raise CommandError(f"{url} answered HTTP {error.code} {error.reason}") from error
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise CommandError(f"Could not fetch {url}: {error}") from error
        except ValueError as error:
            raise CommandError(f"Unexpected reply from {url}: {error}") from error
        if not prices:
            raise CommandError(f"{url} listed no priced models; {output} left unchanged.")
        existing = read_price_document(output)
        providers = existing.get("providers")
        if not isinstance(providers, dict):
            providers = {}
        providers = {**providers, "openrouter": prices}
        write_price_file(
            output,
            providers,
            updated=datetime.now(UTC).isoformat(timespec="seconds"),
            source=url,
        )
        self.stdout.write(
            self.style.SUCCESS(f"Wrote prices for {len(prices)} OpenRouter models to {output}.")
        )
