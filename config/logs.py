"""One id per API request, carried into the Celery tasks it causes and onto every log record.

The web process takes the id from the request's `X-Request-ID` header (or makes one) and sends
it back in the response. Tasks published while handling the request carry it in a message
header (`config.celery` sets it at publish time and adopts it when a worker starts the task), so
a node's logs name the request that started its execution, and the tasks a task sends carry the
same id in turn. A task sent by no request (beat, recovery) is known by its own task id.

`RequestIdFilter` puts the id on each record as `request_id` for both log formats
(`LOG_FORMAT=text` or `json`, see docs/operations.md).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

HEADER = "X-Request-ID"
# The message header that carries the id from the publisher to the worker.
TASK_HEADER = "request_id"
# Ids from clients are logged as they are: keep them short and free of anything that could
# forge a log line.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_current: ContextVar[str | None] = ContextVar("request_id", default=None)


def request_id_get() -> str | None:
    """The id of the request or task this code runs for, if any."""
    return _current.get()


def request_id_set(value: str | None) -> Token[str | None]:
    return _current.set(value)


def request_id_reset(token: Token[str | None]) -> None:
    _current.reset(token)


def request_id_from_header(value: str | None) -> str:
    """The client's id when it is acceptable, else a new one."""
    if value and _ACCEPTABLE.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds `request_id` ("-" outside any request or task) to every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current.get() or "-"
        return True


Handler = Callable[[HttpRequest], HttpResponseBase]
AsyncHandler = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


@sync_and_async_middleware
def request_id_middleware(get_response: Handler | AsyncHandler) -> Handler | AsyncHandler:
    """Binds the request's id for the request's duration and echoes it in the response."""
    if iscoroutinefunction(get_response):
        handle_async: AsyncHandler = get_response

        async def middleware_async(request: HttpRequest) -> HttpResponseBase:
            value = request_id_from_header(request.headers.get(HEADER))
            token = _current.set(value)
            try:
                response = await handle_async(request)
            finally:
                _current.reset(token)
            response[HEADER] = value
            return response

        return middleware_async

    handle: Handler = get_response  # type: ignore[assignment]

    def middleware(request: HttpRequest) -> HttpResponseBase:
        value = request_id_from_header(request.headers.get(HEADER))
        token = _current.set(value)
        try:
            response = handle(request)
        finally:
            _current.reset(token)
        response[HEADER] = value
        return response

    return middleware


class OccasionalWarning:
    """Logs a warning at most once every `seconds` (per process): a failure that every request
    meets, such as Redis being away, would otherwise write one line per request."""

    def __init__(self, log: logging.Logger, seconds: float = 30.0) -> None:
        self.log = log
        self.seconds = seconds
        self.last = float("-inf")

    def __call__(self, message: str, *args: object) -> None:
        moment = time.monotonic()
        if moment - self.last >= self.seconds:
            self.last = moment
            self.log.warning(message, *args)
