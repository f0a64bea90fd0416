"""The health probes: liveness and readiness (the readiness checks of every app: ops/health.py)."""

from __future__ import annotations

from django.utils.timezone import now
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.access import sees_everything
from config.api.formatting import iso
from ops import health


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


READINESS = inline_serializer(
    "Readiness",
    {
        # Anonymous and non-staff callers get only `status` (ready / not ready).
        "status": serializers.ChoiceField(["ready", "degraded", "unavailable", "not ready"]),
        "provider": serializers.CharField(required=False),
        "model": serializers.CharField(required=False),
        "scheduler": serializers.JSONField(required=False),
        "dagScheduler": serializers.JSONField(required=False),
        "llm": serializers.JSONField(required=False),
        "checks": serializers.JSONField(required=False),
        "timestamp": serializers.DateTimeField(required=False),
    },
)


class ReadinessApi(APIView):
    # Anyone may ask whether the service is ready; only staff (token or session) see why.
    permission_classes: list = []
    throttle_classes: list = []

    def perform_authentication(self, request: Request) -> None:
        """Authenticate lazily in `get`: a probe with a bad token is just anonymous."""

    @extend_schema(
        operation_id="health_ready",
        auth=[],
        responses={
            (200, "application/json"): READINESS,
            (503, "application/json"): READINESS,
        },
        tags=["health"],
        description=(
            "Database, Redis, Celery workers (from the heartbeats they record), schedules and "
            "the LLM set-up, checked with a deadline and cached a few seconds. 503 when the "
            "database or Redis is down, no worker recorded a heartbeat lately, or beat stopped. "
            'Anonymous and non-staff callers get only `{"status": "ready"}` or '
            '`{"status": "not ready"}` with the same status code; the details need a '
            "staff user's token or session."
        ),
    )
    def get(self, request: Request) -> Response:
        status, body = health.readiness(iso(now()))
        try:
            user = request.user
        except AuthenticationFailed:
            user = None
        if not sees_everything(user):
            body = {"status": "ready" if status < 500 else "not ready"}
        return Response(body, status=status)
