"""`/ws/runs/<id>/`: a goal run's live events over WebSocket (config/live_consumer.py)."""

from __future__ import annotations

from config.live_consumer import LiveEventsConsumer
from runs.events import RUN_EVENTS


class RunEventsConsumer(LiveEventsConsumer):
    store = RUN_EVENTS
    subject_kwarg = "run_id"
