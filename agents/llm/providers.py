"""Provider names and settings: which provider and model a call uses, and whether it can run."""

from __future__ import annotations

from urllib.parse import urlsplit

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


# Where each provider's OpenAI-compatible API lives and which setting holds its key.
KEY_SETTINGS = {"openai": "OPENAI_API_KEY", "openrouter": "OPENROUTER_API_KEY"}
# Providers whose chat endpoint takes `image_url` content parts.
IMAGE_PROVIDERS = frozenset({"openai", "openrouter"})


def provider_base_url(provider: str) -> str:
    """The provider's OpenAI-compatible base URL (Ollama's gets `/v1` when given a bare host)."""
    if provider == "openai":
        return (settings.OPENAI_BASE_URL or "https://api.openai.com/v1").rstrip("/")
    if provider == "openrouter":
        return (settings.OPENROUTER_BASE_URL or "https://openrouter.ai/api/v1").rstrip("/")
    url = (settings.OLLAMA_BASE_URL or "http://localhost:11434/v1").rstrip("/")
    # Upstream's OLLAMA_BASE_URL is the bare server (http://host:11434); its OpenAI API is /v1.
    if urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url


def provider_api_key(provider: str) -> str:
    setting = KEY_SETTINGS.get(provider)
    if setting is None:
        return ""
    return getattr(settings, setting, "") or ""


def missing_configuration(provider: str) -> str | None:
    """Why calls to this provider cannot be attempted, or None when they can."""
    if provider_configured(provider):
        return None
    return f"no API key: set {KEY_SETTINGS.get(provider, 'the API key')}"


def accepts_images(provider: str) -> bool:
    return provider in IMAGE_PROVIDERS
