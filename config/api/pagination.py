"""Paging of list endpoints whose body is a bare array: the page is described in headers."""

from __future__ import annotations

from typing import TypeVar

from django.http import HttpResponse
from rest_framework.request import Request

R = TypeVar("R", bound=HttpResponse)


def add_page_headers(response: R, request: Request, *, total: int, limit: int, offset: int) -> R:
    """`X-Total-Count` (rows matching the filters), `X-Limit`, `X-Offset`, and while more rows
    remain a `Link` header with `rel="next"` (the same query with the next offset)."""
    response["X-Total-Count"] = str(total)
    response["X-Limit"] = str(limit)
    response["X-Offset"] = str(offset)
    if offset + limit < total:
        params = request.query_params.copy()
        params["offset"] = str(offset + limit)
        params["limit"] = str(limit)
        next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        response["Link"] = f'<{next_url}>; rel="next"'
    return response
