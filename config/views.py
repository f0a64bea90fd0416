"""Project-level views: the API index and the error handlers (JSON under /api and /health, a
page elsewhere)."""

from __future__ import annotations

import functools
import re
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, URLResolver, get_resolver, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.exceptions import django_limit_body, framework_body
from config.api.renderers import dumps
from config.error_pages import error_page, page_csrf_failure


def json_response(body: Any, status: int) -> HttpResponse:
    return HttpResponse(dumps(body), status=status, content_type="application/json; charset=utf-8")


def api_resources() -> tuple[dict[str, Any], ...]:
    """Every route under /api/v1/ with the methods its view answers, in URLconf order: built
    once per URLconf (it does not change while a process runs), not on every request."""
    return _resources_of(get_resolver())


@functools.lru_cache(maxsize=8)
def _resources_of(resolver: URLResolver) -> tuple[dict[str, Any], ...]:
    resources: list[dict[str, Any]] = []
    for included in resolver.url_patterns:
        if str(included.pattern) != "api/v1/":
            continue
        for app_patterns in getattr(included, "url_patterns", []):
            for pattern in getattr(app_patterns, "url_patterns", [app_patterns]):
                callback = pattern.callback
                view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
                if view_class is not None:
                    methods = [
                        method.upper()
                        for method in view_class.http_method_names
                        if method not in ("options", "head") and hasattr(view_class, method)
                    ]
                else:
                    methods = ["GET"]  # the event streams
                if not str(pattern.pattern):
                    continue  # the index itself
                route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
                resources.append({"path": f"/api/v1/{route}", "methods": methods})
    return tuple(resources)


class ApiIndexApi(APIView):
    """What a new user sees first: where the documentation is and which resources exist."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="api_index",
        auth=[],
        responses=inline_serializer(
            "ApiIndex",
            {
                "name": serializers.CharField(),
                "version": serializers.CharField(),
                "docs": serializers.CharField(),
                "schema": serializers.CharField(),
                "authentication": serializers.CharField(),
                "resources": inline_serializer(
                    "ApiResource",
                    {
                        "path": serializers.CharField(),
                        "methods": serializers.ListField(child=serializers.CharField()),
                    },
                    many=True,
                ),
            },
        ),
        tags=["api"],
        description="An index of the API: links to the documentation and every resource.",
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "name": "Async Agent API",
                "version": "v1",
                "docs": "/api/docs/",
                "schema": "/api/schema/",
                "authentication": "Authorization: Token <key> (or Bearer <key>)",
                "resources": api_resources(),
            }
        )


def answers_json(request: HttpRequest) -> bool:
    """Whether errors on this path are JSON (the API and the health probes) or HTML pages."""
    path = request.path_info or request.path
    return path.startswith("/api/") or path == "/api" or path.startswith("/health")


def _route_exists(path: str) -> bool:
    try:
        return resolve(path).func is not route_not_found
    except Resolver404:
        return False


# A 404 changes nothing, so it needs no CSRF token: an unknown path answers 404, not 403.
@csrf_exempt
def route_not_found(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    if not answers_json(request):
        return error_page(request, 404)
    message = f"Route {request.method}:{request.path} not found"
    path = request.path_info
    if path.endswith("/") and len(path) > 1 and _route_exists(path.rstrip("/")):
        message += f" (paths have no trailing slash: {path.rstrip('/')})"
    return json_response(framework_body(404, message), 404)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if answers_json(request):
        return route_not_found(request)
    return error_page(request, 404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's own refusals: too many fields, a body over DATA_UPLOAD_MAX_MEMORY_SIZE, ..."""
    if answers_json(request):
        if isinstance(exception, SuspiciousOperation):
            status, body = django_limit_body(exception)
            return json_response(body, status)
        return json_response(framework_body(400, "Bad request"), 400)
    return error_page(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if answers_json(request):
        return json_response({"error": "Forbidden"}, 403)
    return error_page(request, 403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if answers_json(request):
        message = f"CSRF verification failed: {reason}" if reason else "CSRF verification failed"
        return json_response({"error": message}, 403)
    return page_csrf_failure(request)


def server_error(request: HttpRequest) -> HttpResponse:
    if answers_json(request):
        return json_response({"error": "Internal server error"}, 500)
    return error_page(request, 500)
