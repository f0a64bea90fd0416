"""Content negotiation for the API: an Accept header that no renderer satisfies gets the
default rendering (JSON) instead of 406.

The original server ignored Accept and always answered JSON, and its clients may send
anything there (a browser's `text/html`, a malformed value). HTTP lets a server disregard an
Accept header it cannot satisfy, so every documented answer stays reachable whatever the
header says. An explicit `?format=` naming no renderer is still a 404.
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class DefaultRenderingNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            renderer = renderers[0]
            return renderer, renderer.media_type
