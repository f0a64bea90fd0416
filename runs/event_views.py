"""`GET /api/v1/runs/<id>/events`: a goal run's events as Server-Sent Events (see config/sse.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from config.sse import stream_events
from runs.events import RUN_EVENTS


@csrf_exempt
def run_events_stream(request: HttpRequest, run_id: str) -> HttpResponseBase:
    return stream_events(request, store=RUN_EVENTS, subject_id=run_id)
