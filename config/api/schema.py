"""OpenAPI additions for endpoints that are not DRF views (the event streams)."""

from __future__ import annotations

from typing import Any

_STREAMS = {
    "/api/v1/dag-executions/{execution_id}/events": (
        "execution_id",
        "stream_dag_execution_events",
        "executions",
        "Live events of a DAG execution (Server-Sent Events). Starts with an "
        "`execution.updated` snapshot, replays stored events after `Last-Event-ID` (header) or "
        "`lastEventId` (query), then streams new ones; each frame has `id:` (sequence number), "
        "`event:` and `data:` (JSON). Ends after a terminal event; 204 when a finished execution "
        "has nothing left to send. EventSource clients may authenticate with `?token=`.",
    ),
    "/api/v1/runs/{run_id}/events": (
        "run_id",
        "stream_run_events",
        "runs",
        "Live events of a goal run (Server-Sent Events): a `run.updated` snapshot, replay after "
        "`Last-Event-ID`, then `run.started`, `run.step`, `run.completed` / `run.failed`.",
    ),
}


def add_streaming_endpoints(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    paths = result.setdefault("paths", {})
    for path, (parameter, operation_id, tag, description) in _STREAMS.items():
        paths[path] = {
            "get": {
                "operationId": operation_id,
                "tags": [tag],
                "description": description,
                "parameters": [
                    {
                        "name": parameter,
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "lastEventId",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer"},
                    },
                    {
                        "name": "token",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "integer"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "An event stream.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "204": {"description": "Finished; nothing left to send."},
                    "401": {"description": "Not authenticated."},
                    "404": {"description": "Unknown id."},
                },
            }
        }
    return result
