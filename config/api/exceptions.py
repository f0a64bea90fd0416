"""Every API error becomes JSON: `{"error": ...}` plus the keys existing clients read.

Framework-level failures (malformed JSON, unsupported media type, body too large, rate limit,
unknown route) keep the TypeScript server's `{statusCode, error, message, code?}` shape, which
its clients parse (docs/api-differences.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response

from config.errors import DomainError, FieldInvalid

logger = logging.getLogger(__name__)

INPUT_LABEL = "Invalid input parameters"
QUERY_LABEL = "Invalid query parameters"
PARAMS_LABEL = "Invalid parameters"


class ApiError(drf.APIException):
    """An error with an explicit status and JSON body."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(detail=message)
        self.status_code = status
        self.body: dict[str, Any] = {"error": message, **extra}


def not_found(message: str, **extra: Any) -> ApiError:
    return ApiError(404, message, **extra)


def conflict(message: str, **extra: Any) -> ApiError:
    return ApiError(409, message, **extra)


def bad_request(message: str, **extra: Any) -> ApiError:
    return ApiError(400, message, **extra)


class ApiValidationError(drf.ValidationError):
    """A validation failure labelled by its kind of input, as clients expect."""

    def __init__(self, detail: Any, label: str = INPUT_LABEL, **extra: Any) -> None:
        super().__init__(detail)
        self.label = label
        self.extra = extra


class PayloadTooLarge(drf.APIException):
    status_code = 413
    default_detail = "Request body is too large"
    default_code = "FST_ERR_CTP_BODY_TOO_LARGE"


# Where Python's reason phrase differs from the one existing clients see.
_PHRASES = {413: "Payload Too Large"}


def framework_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"statusCode": status}
    if code:
        body["code"] = code
    body["error"] = _PHRASES.get(status) or HTTPStatus(status).phrase
    body["message"] = message
    return body


def flatten_errors(detail: Any, path: Sequence[str | int] = ()) -> list[dict[str, Any]]:
    """DRF's nested error structure as a flat list of `{path, message}` issues."""
    issues: list[dict[str, Any]] = []
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            if key == "non_field_errors":
                issues.extend(flatten_errors(value, path))
                continue
            segment: str | int = int(key) if isinstance(key, int) or str(key).isdigit() else key
            issues.extend(flatten_errors(value, [*path, segment]))
    elif isinstance(detail, list | tuple):
        if all(not isinstance(item, Mapping | list | tuple) for item in detail):
            issues.extend({"path": list(path), "message": str(item)} for item in detail)
        else:
            for index, item in enumerate(detail):
                if isinstance(item, Mapping | list | tuple):
                    if item:
                        issues.extend(flatten_errors(item, [*path, index]))
                else:
                    issues.append({"path": list(path), "message": str(item)})
    else:
        issues.append({"path": list(path), "message": str(detail)})
    return issues


def validation_body(detail: Any, label: str = INPUT_LABEL, **extra: Any) -> dict[str, Any]:
    return {"error": label, **extra, "validation_errors": flatten_errors(detail)}


def django_limit_body(exc: SuspiciousOperation) -> tuple[int, dict[str, Any]]:
    """Status and body for Django's own request limits and refusals (never a 500)."""
    if isinstance(exc, RequestDataTooBig):
        return 413, framework_body(413, str(exc), "FST_ERR_CTP_BODY_TOO_LARGE")
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return 400, framework_body(400, str(exc))
    # Other suspicious requests (a bad Host header, a malformed multipart body, ...): the
    # message may echo attacker-chosen text, so it stays generic.
    return 400, framework_body(400, "Bad request")


def api_exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response:
    # Imported here: rest_framework.views loads the parsers, which import this module.
    from rest_framework.views import set_rollback

    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    if isinstance(exc, FieldInvalid):
        status = 400
        body = {"error": INPUT_LABEL, **exc.extra}
        body["validation_errors"] = [{"path": exc.path, "message": exc.message}]
    elif isinstance(exc, DomainError):
        status, body = exc.status, {"error": exc.message, **exc.extra}
    elif isinstance(exc, ApiError):
        status, body = exc.status_code, exc.body
    elif isinstance(exc, ApiValidationError):
        status, body = 400, validation_body(exc.detail, exc.label, **exc.extra)
    elif isinstance(exc, drf.ValidationError):
        status, body = 400, validation_body(exc.detail)
    elif isinstance(exc, drf.ParseError):
        status, body = 400, framework_body(400, str(exc.detail))
    elif isinstance(exc, drf.UnsupportedMediaType):
        status = 415
        body = framework_body(415, str(exc.detail), "FST_ERR_CTP_INVALID_MEDIA_TYPE")
    elif isinstance(exc, PayloadTooLarge):
        status = 413
        body = framework_body(413, str(exc.detail), "FST_ERR_CTP_BODY_TOO_LARGE")
    elif isinstance(exc, drf.Throttled):
        # Throttled sets `wait` in its __init__; the stubs do not declare it.
        wait = max(1, int(exc.wait or 1))  # type: ignore[attr-defined]
        status = 429
        body = framework_body(429, f"Rate limit exceeded, retry in {wait} seconds")
        headers["Retry-After"] = str(wait)
    elif isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        status, body = exc.status_code, {"error": str(exc.detail)}
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
    elif isinstance(exc, drf.APIException):
        status, body = exc.status_code, {"error": str(exc.detail)}
    elif isinstance(exc, SuspiciousOperation):
        status, body = django_limit_body(exc)
    else:
        view = context.get("view")
        logger.exception("unhandled error in %s", type(view).__name__ if view else "view")
        status, body = 500, {"error": "Internal server error"}

    set_rollback()
    return Response(body, status=status, headers=headers)
