from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from rest_framework.renderers import BaseRenderer

from config.api.formatting import iso, money


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)


class JsonRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None):
        if data is None:
            return b""
        return dumps(data)
