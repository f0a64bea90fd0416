"""Request body parsers: JSON capped at 1 MiB, and text/plain as a string (existing
clients send it; see docs/api-differences.md)."""

from __future__ import annotations

from typing import IO, Any

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from config.api.exceptions import PayloadTooLarge


def read_capped(stream: IO[bytes], limit: int) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"Request body is too large (limit {limit} bytes)")
    return data


class LimitedJsonParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        raw = read_capped(stream, settings.API_JSON_BODY_LIMIT)
        if not raw.strip():
            # Action endpoints are called with a JSON content type and no body.
            return {}
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise ParseError(f"Malformed JSON: {error}") from error


class PlainTextParser(BaseParser):
    media_type = "text/plain"

    # The text becomes `request.data` as it is; the stubs allow only mappings there.
    def parse(self, stream, media_type=None, parser_context=None) -> str:  # type: ignore[override]
        raw = read_capped(stream, settings.API_JSON_BODY_LIMIT)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ParseError("Request body is not valid UTF-8") from error
