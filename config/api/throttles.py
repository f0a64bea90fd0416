"""Per-user request throttling, shared across web processes through the Redis cache."""

from __future__ import annotations

import logging
import math

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

logger = logging.getLogger(__name__)


class PerUserThrottle(UserRateThrottle):
    """Authenticated users by id, anonymous clients by address; fails open without Redis.

    A sliding-window counter: one Redis counter per client and fixed window, the previous
    window's count weighted by how much of it still lies within the last `duration` seconds.
    One round trip and two small keys per client, where DRF's default reads and rewrites the
    list of every request time in the window (hundreds of entries) twice per request.
    """

    scope = "user"

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_RATE or None

    def allow_request(self, request: Request, view: object) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        try:
            redis = getattr(self.cache, "redis", None)
            if redis is None:  # a cache without a Redis client: DRF's own bookkeeping
                return super().allow_request(request, view)
            return self._hit(redis())
        except Exception:  # Redis is down: serve the request rather than fail it
            logger.warning("throttle cache unavailable; request not rate limited", exc_info=True)
            return True

    def _hit(self, redis) -> bool:
        now = self.timer()
        window, offset = divmod(now, self.duration)
        current_key = self.cache.make_key(f"{self.key}:{int(window)}")
        previous_key = self.cache.make_key(f"{self.key}:{int(window) - 1}")
        pipe = redis.pipeline(transaction=False)
        pipe.incr(current_key)
        pipe.expire(current_key, 2 * self.duration)
        pipe.get(previous_key)
        current, _, previous = pipe.execute()
        previous = int(previous or 0)
        remaining_share = 1 - offset / self.duration
        if previous * remaining_share + current <= self.num_requests:
            return True
        redis.decr(current_key)  # a refused request does not count against the client
        self._wait_seconds = self._seconds_until_allowed(current, previous, offset)
        return False

    def _seconds_until_allowed(self, current: int, previous: int, offset: float) -> float:
        """When the weighted count, with this request, first fits the rate again."""
        if current > self.num_requests or previous == 0:
            return self.duration - offset  # only the next window can take it
        # previous * (1 - (offset + t) / duration) + current <= num_requests
        wait = self.duration * (1 - (self.num_requests - current) / previous) - offset
        return max(0.0, min(wait, self.duration - offset))

    def wait(self) -> float | None:
        seconds = getattr(self, "_wait_seconds", None)
        return None if seconds is None else max(1, math.ceil(seconds))
