"""Project-level views: health probes and JSON answers for unknown routes and server errors."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.timezone import now
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config import health
from config.api.exceptions import framework_body
from config.api.formatting import iso
from config.api.renderers import dumps
from config.ui.pages import error_page


def json_response(body: Any, status: int) -> HttpResponse:
    return HttpResponse(dumps(body), status=status, content_type="application/json; charset=utf-8")


class HealthApi(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    @extend_schema(
        operation_id="health",
        auth=[],
        responses=inline_serializer(
            "Health", {"status": serializers.CharField(), "timestamp": serializers.DateTimeField()}
        ),
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        return Response(health.liveness())


class ReadinessApi(APIView):
    # Its checks wait on Redis, the database and the LLM check with timeouts: not a quick read
    # (config/asgi_http.py), so it never holds up the shared request threads.
    runs_long = True
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    @extend_schema(
        operation_id="health_ready",
        auth=[],
        responses={
            (200, "application/json"): inline_serializer(
                "Readiness",
                {
                    "status": serializers.ChoiceField(["ready", "degraded", "unavailable"]),
                    "provider": serializers.CharField(),
                    "model": serializers.CharField(),
                    "scheduler": serializers.JSONField(),
                    "dagScheduler": serializers.JSONField(),
                    "llm": serializers.JSONField(),
                    "checks": serializers.JSONField(),
                    "timestamp": serializers.DateTimeField(),
                },
            )
        },
        tags=["health"],
        description=(
            "Database, Redis and Celery workers (checked with a deadline, cached a few "
            "seconds), schedules and the LLM set-up. 503 when the database or Redis is down."
        ),
    )
    def get(self, request: Request) -> Response:
        status, body = health.readiness(iso(now()))
        return Response(body, status=status)


# Paths that answer in JSON; every other path is a browser page and gets an HTML error page.
JSON_PREFIXES = ("/api/", "/health")


def is_page_request(request: HttpRequest) -> bool:
    return not request.path.startswith(JSON_PREFIXES)


def route_not_found(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    if is_page_request(request):
        return error_page(request, 404)
    message = f"Route {request.method}:{request.path} not found"
    return json_response(framework_body(404, message), 404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_page_request(request):
        return error_page(request, 400)
    return json_response(framework_body(400, "Bad request"), 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_page_request(request):
        return error_page(request, 403)
    return json_response({"error": "Forbidden"}, 403)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_page_request(request):
        return error_page(request, 500)
    return json_response({"error": "Internal server error"}, 500)
