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


# What makes a string schema refuse the empty string.
_STRING_RULES = ("enum", "const", "minLength", "pattern", "format")


def refuses_blank(schema: Any) -> bool:
    """Whether a value of `schema` cannot be the empty string: anything but a plain string."""
    if not isinstance(schema, dict) or schema.get("type") != "string":
        return True
    return any(rule in schema for rule in _STRING_RULES)


def mark_blank_query_parameters(
    result: dict[str, Any], generator, request, public
) -> dict[str, Any]:
    """Say that a query parameter may be sent blank (`?limit=`) where its schema alone would
    refuse that: the API reads a blank one as absent (`config.api.validation.validated_query`),
    because existing clients send empty filters. A plain string parameter accepts "" as it is,
    and saying so again would make it look narrower than it is to tools that read the flag as
    "any value or a blank one". Runs before the stream endpoints are added, which read their own
    parameters."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter.get("in") == "query" and refuses_blank(parameter.get("schema")):
                    parameter["allowEmptyValue"] = True
    return result


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Every error is JSON with an `error` message. Validation errors list each problem in "
        "`validation_errors`; refusals by the HTTP layer (malformed JSON, unsupported media "
        "type, body too large, rate limit, unknown route) also carry `statusCode` and `message`."
    ),
    "properties": {
        "error": {"type": "string"},
        "validation_errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {
                        "type": "array",
                        "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "message": {"type": "string"},
                },
                "required": ["path", "message"],
            },
        },
        "statusCode": {"type": "integer"},
        "code": {"type": "string"},
        "message": {"type": "string"},
    },
    "required": ["error"],
    "additionalProperties": True,
}

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Document the errors every operation can answer, with their one JSON shape.

    Which errors apply follows from the operation: authentication and throttling for every
    authenticated endpoint, 404 for every path with an id, body errors for every body, 409 for
    writes that meet a state conflict. An error a view documents itself keeps its description.
    """
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            errors: dict[str, str] = {}
            if path.startswith("/api/v1/"):
                errors["400"] = "Invalid input (body, query or too many parameters)."
            if operation.get("security", [{}]) not in ([], [{}]):
                errors["401"] = "Not authenticated."
                errors["403"] = "Not allowed (including a failed CSRF check of a session)."
                errors["429"] = "Too many requests; retry after `Retry-After` seconds."
            if "requestBody" in operation or any(
                parameter.get("in") == "path" for parameter in operation.get("parameters", [])
            ):
                errors["404"] = "No such object (in the path or named in the body)."
            if "requestBody" in operation:
                errors["400"] = "Invalid input (body, query or too many parameters)."
                errors["413"] = "Request body too large."
                errors["415"] = "Unsupported content type."
            if method in _WRITE_METHODS and path.startswith("/api/v1/"):
                errors["409"] = "The object's state does not allow this."
            for status, description in errors.items():
                responses.setdefault(status, _error_response(description))
            for status, response in responses.items():
                if status[0] in "45" and "content" not in response:
                    response["content"] = {"application/json": {"schema": _ERROR_REF}}
    return result


# A runnable example body for every request, shown (and sent by "Try it out") in Swagger UI.
# Each works unedited against a fresh system: the seeded agents, the default model. Ids in a
# path (and dagId) must be replaced by real ones; the bodies themselves validate.
_PLAN = {
    "goal-text": "Explain in three short points why the sky is blue",
    "agentName": "DecomposerV8",
}
REQUEST_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/agents"): {
        "name": "Summarizer",
        "version": "1.0.0",
        "promptTemplate": "Summarise the text you are given in three bullet points.",
    },
    ("patch", "/api/v1/agents/{agent_id}"): {
        "promptTemplate": "Summarise the text you are given in five bullet points.",
    },
    ("post", "/api/v1/create-dag"): _PLAN,
    ("post", "/api/v1/create-and-execute-dag"): _PLAN,
    ("post", "/api/v1/dag-experiments"): {
        **_PLAN,
        "provider": "openai",
        "models": ["gpt-4o-mini"],
        "temperatures": [0.2, 0.7],
    },
    ("post", "/api/v1/execute-dag"): {"dagId": "<a DAG id from GET /api/v1/dags>"},
    ("post", "/api/v1/dag-run"): {"dagId": "<a DAG id from GET /api/v1/dags>"},
    ("patch", "/api/v1/dags/{dag_id}"): {
        "dagTitle": "Why the sky is blue",
        "cronSchedule": "0 8 * * 1",
        "scheduleActive": False,
        "timezone": "UTC",
    },
    ("post", "/api/v1/goals"): {
        "objective": "Check the project's README for broken links every Monday",
        "params": {"stepBudget": 10},
        "schedule": {"cronExpr": "0 9 * * 1", "timezone": "UTC"},
    },
    ("patch", "/api/v1/goals/{goal_id}"): {"status": "paused"},
    ("post", "/api/v1/task"): {
        "taskName": "defaultAgent",
        "prompt": "Name three primary colours.",
        "params": '{"max_tokens": 200}',
    },
}


def add_request_examples(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    for (method, path), value in REQUEST_EXAMPLES.items():
        operation = result.get("paths", {}).get(path, {}).get(method)
        if not operation or "requestBody" not in operation:
            continue
        for media in operation["requestBody"]["content"].values():
            media["examples"] = {"runnable": {"summary": "Works as it is", "value": value}}
    return result
