"""`/ws/dag-executions/<id>/`: an execution's live events over WebSocket.

See config/live_consumer.py.
"""

from __future__ import annotations

from config.live_consumer import LiveEventsConsumer
from dags.events import EXECUTION_EVENTS


class ExecutionEventsConsumer(LiveEventsConsumer):
    store = EXECUTION_EVENTS
    subject_kwarg = "execution_id"
