"""Errors of the LLM layer: every failure names the provider and model it concerns."""

from __future__ import annotations


class LLMError(Exception):
    """A chat call failed (after the layer's own retries when `retryable`).

    `status` is the provider's HTTP status when there was one; `retryable` says whether the
    failure was transient (rate limit, server error, timeout, connection), so that callers such
    as DAG nodes can decide to try again later.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str,
        status: int | None = None,
        retryable: bool = False,
        detail: str | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status = status
        self.retryable = retryable
        # The provider's own wording (or ours when there was no reply), without our prefix.
        self.detail = detail if detail is not None else message
        super().__init__(f"{provider} model {model}: {message}")

    @property
    def message(self) -> str:
        return str(self)


class LLMConfigurationError(LLMError):
    """The call cannot be attempted: unknown provider, missing API key, bad base URL."""
