"""`POST /api/v1/task`: run one agent on a prompt and attached files.

The body is multipart/form-data (the only way to attach files), a URL-encoded form, or JSON;
the fields are the same in each (`params` may be a JSON object in a JSON body).
"""

from __future__ import annotations

import io
import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import (
    FileUploadHandler,
    MemoryFileUploadHandler,
    TemporaryFileUploadHandler,
)
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions as drf
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import selectors
from agents.llm.errors import LLMConfigurationError, LLMError
from agents.task.services import (
    TaskOutcome,
    attachment_from_upload,
    task_params,
    task_params_issues,
    task_run,
)
from config.api.exceptions import ApiError, PayloadTooLarge
from config.api.formatting import money
from config.api.parsers import LimitedJsonParser, read_capped

REQUIRED_MESSAGE = "taskName and prompt are required fields"
ACCEPTED_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded", "application/json")
FAILED_MESSAGE = "Task execution failed"


def _size(limit: int) -> str:
    if limit >= 1024 * 1024 and limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    if limit >= 1024 and limit % 1024 == 0:
        return f"{limit // 1024} KiB"
    return f"{limit} bytes"


def _task_failed(status: int, message: str) -> ApiError:
    """The `{"error": "Task execution failed", "message": ...}` body existing clients read
    (docs/api-differences.md)."""
    error = ApiError(status, FAILED_MESSAGE)
    error.body["message"] = message
    return error


def _too_large(message: str, limit: int) -> ApiError:
    return ApiError(413, message, limitBytes=limit)


class TaskUploadLimits(FileUploadHandler):
    """Stops an upload as soon as it passes the per-file, per-request or file-count limit.

    It runs first in the handler chain, so nothing beyond the limit is buffered or spooled.
    """

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.max_file = settings.TASK_MAX_FILE_BYTES
        self.max_request = settings.TASK_MAX_REQUEST_BYTES
        self.max_files = settings.TASK_MAX_FILES
        self.files = 0
        self.file_bytes = 0
        self.total_bytes = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.max_request:
            raise _too_large(
                f"The request is larger than the limit of {_size(self.max_request)}",
                self.max_request,
            )
        return None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.files += 1
        self.file_bytes = 0
        if self.files > self.max_files:
            raise ApiError(
                413,
                f"Too many files: at most {self.max_files} per request",
                limitFiles=self.max_files,
            )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.file_bytes += len(raw_data)
        self.total_bytes += len(raw_data)
        if self.file_bytes > self.max_file:
            raise _too_large(
                f"The file '{self.file_name}' is larger than the limit of "
                f"{_size(self.max_file)} per file",
                self.max_file,
            )
        if self.total_bytes > self.max_request:
            raise _too_large(
                f"The files are larger than the limit of {_size(self.max_request)} per request",
                self.max_request,
            )
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the file object


def task_payload(task_name: str, outcome: TaskOutcome) -> dict[str, Any]:
    result = outcome.result
    payload: dict[str, Any] = {
        "taskName": task_name,
        "agentName": outcome.agent.name,
        "agentVersion": outcome.agent.version,
        "inputFiles": [
            {"filename": item.filename, "mimeType": item.mime_type} for item in outcome.attachments
        ],
        "response": result.content or "",
    }
    if result.usage is not None:
        payload["usage"] = result.usage.as_dict()
    payload["params"] = {
        "provider": outcome.provider_setting,
        "model": result.model,
        "max_tokens": outcome.params.max_tokens,
        "temperature": outcome.params.temperature,
        "reasoning_effort": outcome.params.reasoning_effort,
    }
    payload["costUsd"] = money(result.cost_usd)
    return payload


class CappedFormParser(FormParser):
    """A URL-encoded form, capped like multipart's form fields (DATA_UPLOAD_MAX_MEMORY_SIZE):
    DRF's own form parser reads the whole body whatever its size."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            raw = read_capped(stream, limit) if stream is not None else b""
        except PayloadTooLarge as error:
            raise _too_large(
                f"The form fields are larger than the limit of {_size(limit)}", limit
            ) from error
        return super().parse(io.BytesIO(raw), media_type, parser_context)


def _text_field(data: Any, name: str) -> str:
    """A form or JSON field as text; anything but a string (a JSON number, list...) is absent."""
    value = data.get(name) if hasattr(data, "get") else None
    return value if isinstance(value, str) else ""


class TaskIn(serializers.Serializer):
    """Documents the multipart form (validation happens in the view)."""

    taskName = serializers.CharField(help_text="Name of the active agent to run.")
    prompt = serializers.CharField()
    params = serializers.CharField(
        required=False,
        help_text='JSON: {"max_tokens": int > 0, "temperature": 0..2, '
        '"reasoning_effort": "low" | "medium" | "high"}',
    )
    files = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        help_text="Any number of files under any field name: text (UTF-8), PDF, PNG/JPEG/WebP/GIF.",
    )


TaskOut = inline_serializer(
    "TaskResult",
    {
        "taskName": serializers.CharField(),
        "agentName": serializers.CharField(),
        "agentVersion": serializers.CharField(),
        "inputFiles": serializers.ListField(child=serializers.DictField()),
        "response": serializers.CharField(),
        "usage": serializers.DictField(required=False),
        "params": serializers.DictField(),
        "costUsd": serializers.CharField(allow_null=True),
    },
)


class TaskApi(APIView):
    parser_classes = [MultiPartParser, CappedFormParser, LimitedJsonParser]

    def initialize_request(self, request, *args, **kwargs):
        request.upload_handlers = [
            TaskUploadLimits(request),
            MemoryFileUploadHandler(request),
            TemporaryFileUploadHandler(request),
        ]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        operation_id="run_task",
        request={
            "multipart/form-data": TaskIn,
            "application/x-www-form-urlencoded": TaskIn,
            "application/json": TaskIn,
        },
        responses={
            200: TaskOut,
            400: OpenApiResponse(description="Missing fields, bad params or unusable files."),
            404: OpenApiResponse(description="No active agent with that name."),
            413: OpenApiResponse(description="A file or the request is over the size limit."),
            415: OpenApiResponse(
                description="The body is not multipart/form-data, a URL-encoded form or JSON."
            ),
            502: OpenApiResponse(description="The LLM provider failed."),
            503: OpenApiResponse(description="The LLM provider is not configured."),
        },
        tags=["task"],
        description=(
            "Runs the active agent named `taskName` once on `prompt` plus the attached files "
            "and returns its reply, usage and cost. Synchronous; nothing is stored."
        ),
    )
    def post(self, request: Request) -> Response:
        content_type = (request.content_type or "").lower()
        if not content_type.startswith(ACCEPTED_TYPES):
            raise drf.UnsupportedMediaType(
                request.content_type or "",
                detail="POST /api/v1/task takes multipart/form-data, "
                "application/x-www-form-urlencoded or application/json "
                f'(got "{request.content_type or "no content type"}")',
            )
        try:
            data, files = request.data, request.FILES
        except RequestDataTooBig as error:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            raise _too_large(
                f"The form fields are larger than the limit of {_size(limit)}", limit
            ) from error
        except (TooManyFieldsSent, TooManyFilesSent) as error:
            raise ApiError(413, f"Too many form fields or files: {error}") from error

        task_name = _text_field(data, "taskName").strip()
        prompt = _text_field(data, "prompt")
        if not task_name or not prompt.strip():
            raise ApiError(400, REQUIRED_MESSAGE)

        raw_params = data.get("params") if hasattr(data, "get") else None
        decoded: Any = {}
        if raw_params is not None and not isinstance(raw_params, str):
            decoded = raw_params  # a JSON body may give params as an object (checked below)
        elif raw_params and raw_params.strip():
            try:
                decoded = json.loads(raw_params)
            except json.JSONDecodeError as error:
                issue = {"path": ["params"], "message": f"params is not valid JSON: {error}"}
                raise ApiError(
                    400, "Validation error", details=[issue], validation_errors=[issue]
                ) from error
        issues = task_params_issues(decoded)
        if issues:
            raise ApiError(400, "Validation error", details=issues, validation_errors=issues)
        params = task_params(decoded)

        agent = selectors.agent_get_active(name=task_name)
        if agent is None:
            raise ApiError(404, f"No active agent found with name: {task_name}")

        # Every file part is an attachment, whatever its field name.
        attachments = [
            attachment_from_upload(
                filename=upload.name, content_type=upload.content_type, data=upload.read()
            )
            for field in files
            for upload in files.getlist(field)
        ]

        try:
            outcome = task_run(agent=agent, prompt=prompt, attachments=attachments, params=params)
        except LLMConfigurationError as error:
            raise _task_failed(503, str(error)) from error
        except LLMError as error:
            raise _task_failed(502, str(error)) from error
        return Response(task_payload(task_name, outcome))
