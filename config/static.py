"""Static files through WhiteNoise without slowing every other request down under ASGI.

WhiteNoise's middleware is synchronous only: placed in an otherwise asynchronous middleware
chain, it makes Django hop between the event loop and threads on every request. This wrapper
is async-capable and hands only requests for STATIC_URL to WhiteNoise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware


def _not_a_static_file(request: HttpRequest) -> None:
    return None


class StaticFilesMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.whitenoise = WhiteNoiseMiddleware(_not_a_static_file)
        self.prefix = settings.STATIC_URL
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _static(self, request: HttpRequest) -> HttpResponseBase | None:
        return self.whitenoise(request)

    def __call__(self, request: HttpRequest):
        if iscoroutinefunction(self):
            return self._acall(request)
        if request.path_info.startswith(self.prefix):
            response = self._static(request)
            if response is not None:
                return response
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(self.prefix):
            response = await sync_to_async(self._static, thread_sensitive=False)(request)
            if response is not None:
                return response
        return await self.get_response(request)
