"""Per-user request throttling, shared across web processes through the Redis cache."""

from __future__ import annotations

import logging

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

logger = logging.getLogger(__name__)


class PerUserThrottle(UserRateThrottle):
    """Authenticated users by id, anonymous clients by address; fails open without Redis."""

    scope = "user"

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_RATE or None

    def allow_request(self, request: Request, view: object) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:  # the cache is down: serve the request rather than fail it
            logger.warning("throttle cache unavailable; request not rate limited", exc_info=True)
            return True
