"""Provider names and settings: which provider and model a call uses, and whether it can run."""

from __future__ import annotations

from django.conf import settings

PROVIDERS = ("openai", "openrouter", "ollama")
ALIASES = {"openrouter-fetch": "openrouter"}


class UnknownProvider(ValueError):
    pass


def canonical_provider(name: str | None) -> str:
    """The provider to use: the given name (aliases folded) or the configured default."""
    chosen = (name or settings.LLM_PROVIDER or "").strip().lower()
    chosen = ALIASES.get(chosen, chosen)
    if chosen not in PROVIDERS:
        raise UnknownProvider(
            f"Unsupported LLM provider: {name or settings.LLM_PROVIDER} "
            f"(use one of {', '.join(PROVIDERS)})"
        )
    return chosen


def resolve_model(provider: str, model: str | None = None) -> str:
    """Explicit model, else the provider's own `*_MODEL` setting, else `LLM_MODEL`."""
    if model:
        return model
    per_provider = {
        "openai": settings.OPENAI_MODEL,
        "openrouter": settings.OPENROUTER_MODEL,
        "ollama": settings.OLLAMA_MODEL,
    }.get(provider)
    return per_provider or settings.LLM_MODEL


def provider_configured(provider: str) -> bool:
    """Whether calls can be attempted: a key for the hosted providers; Ollama needs none."""
    if provider == "openai":
        return bool(settings.OPENAI_API_KEY)
    if provider == "openrouter":
        return bool(settings.OPENROUTER_API_KEY)
    return provider == "ollama"
