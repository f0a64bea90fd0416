"""WebSocket routes. Apps add their consumers here (live execution and run events)."""

from django.urls import path

from dags.consumers import ExecutionEventsConsumer
from runs.consumers import RunEventsConsumer

websocket_urlpatterns: list = [
    path(
        "ws/dag-executions/<str:execution_id>/",
        ExecutionEventsConsumer.as_asgi(),
        name="ws-execution-events",
    ),
    path("ws/runs/<str:run_id>/", RunEventsConsumer.as_asgi(), name="ws-run-events"),
]
