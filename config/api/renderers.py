from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from rest_framework.renderers import BaseRenderer

from config.api.formatting import iso, money

logger = logging.getLogger(__name__)

# What a value that cannot be written as JSON is replaced with (see `dumps`).
UNRENDERABLE = "[value not shown: nested too deeply to render]"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _pruned(value: Any, max_depth: int) -> Any:
    """A copy of `value` with containers nested deeper than `max_depth` replaced by a note.

    Built without recursion, so it works on any nesting Python could decode.
    """
    root: list[Any] = [None]
    pending: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 1)]
    while pending:
        item, parent, key, depth = pending.pop()
        if isinstance(item, dict | list | tuple):
            if depth > max_depth:
                parent[key] = UNRENDERABLE
                continue
            if isinstance(item, dict):
                copy: Any = {}
                pending.extend((child, copy, name, depth + 1) for name, child in item.items())
            else:
                copy = [None] * len(item)
                pending.extend((child, copy, index, depth + 1) for index, child in enumerate(item))
            parent[key] = copy
        else:
            parent[key] = item
    return root[0]


def dumps(data: Any) -> bytes:
    """JSON bytes of a response body.

    orjson refuses integers beyond 64 bits and nesting beyond 254 levels. Input validation keeps
    such values out, but a row written by other means (an older version, the admin, SQL) must
    not make every read of it fail: the standard library encoder writes any integer, and
    nesting beyond what it can handle is cut off with a note.
    """
    try:
        return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        logger.warning("a response holds a value orjson cannot encode; using the slow encoder")
    try:
        return json.dumps(data, default=_default, ensure_ascii=False).encode()
    except RecursionError:
        return json.dumps(_pruned(data, 64), default=_default, ensure_ascii=False).encode()


class JsonRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None):
        if data is None:
            return b""
        return dumps(data)
