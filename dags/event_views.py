"""`GET /api/v1/dag-executions/<id>/events`: the execution's events as Server-Sent Events.

A plain Django view (not a DRF APIView): it is never throttled (a stream is one long request).
It answers on a request thread; the stream it returns runs on the event loop (config/sse.py).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from config.sse import stream_events
from dags.events import EXECUTION_EVENTS


@csrf_exempt
def execution_events_stream(request: HttpRequest, execution_id: str) -> HttpResponseBase:
    return stream_events(request, store=EXECUTION_EVENTS, subject_id=execution_id)
