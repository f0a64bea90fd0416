from __future__ import annotations

from django.conf import settings
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class ApiAccess(BasePermission):
    """Authenticated users only, unless `API_AUTH_REQUIRED=false` opts a trusted set-up out."""

    message = "Authentication credentials were not provided."

    def has_permission(self, request: Request, view: object) -> bool:
        if not settings.API_AUTH_REQUIRED:
            return True
        return bool(request.user and request.user.is_authenticated)
