"""Per-user request throttling, shared across web processes through Redis; each process falls
back to counting on its own while Redis cannot be reached."""

from __future__ import annotations

import logging
import math
import threading
from typing import TYPE_CHECKING, cast

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

from config.logs import OccasionalWarning
from config.shared_redis import shared_redis

if TYPE_CHECKING:
    from redis import Redis

    # Not at run time: DRF imports this module while rest_framework.views is still loading.
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)
# Every request meets a Redis that is away: say so at most every 30 s.
_warn_degraded = OccasionalWarning(logger)

# Prefix of the counters' keys in Redis.
KEY_PREFIX = "aa:throttle:"


class LocalWindows:
    """The same sliding-window counts, kept in this process: the limit while Redis is away.
    Each process then allows the full rate on its own (a looser limit, never none)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}

    def hit(self, key: str, now: float, duration: int, limit: int) -> tuple[bool, int, int]:
        """Count a request unless it is over `limit`; (allowed, current, previous)."""
        window, _ = divmod(now, duration)
        window = int(window)
        with self._lock:
            if len(self._counts) > 10_000:  # drop windows too old to matter
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= window - 1}
            current = self._counts.get((key, window), 0) + 1
            previous = self._counts.get((key, window - 1), 0)
            offset = now - window * duration
            allowed = previous * (1 - offset / duration) + current <= limit
            if allowed:
                self._counts[(key, window)] = current
            return allowed, current, previous

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


local_windows = LocalWindows()


class PerUserThrottle(UserRateThrottle):
    """Authenticated users by id, anonymous clients by address.

    A sliding-window counter: one Redis counter per client and fixed window, the previous
    window's count weighted by how much of it still lies within the last `duration` seconds.
    One round trip and two small keys per client, where DRF's default reads and rewrites the
    list of every request time in the window (hundreds of entries) twice per request.

    When Redis cannot be reached (down, or no connection free in time), this process counts
    on its own (`LocalWindows`) rather than letting every request through.
    """

    scope = "user"
    # Set by SimpleRateThrottle.__init__ from the rate (the stubs do not declare them); read
    # only once `allow_request` has seen that a rate is set.
    num_requests: int
    duration: int

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_RATE or None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        try:
            return self._hit(shared_redis())
        except Exception as error:  # Redis is away: limit within this process instead
            _warn_degraded(
                "throttle store unavailable (%s: %s); rate limiting within this process",
                type(error).__name__,
                error,
            )
            return self._hit_locally()

    def _hit_locally(self) -> bool:
        now = self.timer()
        key = cast(str, self.key)  # allow_request returns before this when there is no key
        allowed, current, previous = local_windows.hit(key, now, self.duration, self.num_requests)
        if not allowed:
            offset = now - (now // self.duration) * self.duration
            self._wait_seconds = self._seconds_until_allowed(current, previous, offset)
        return allowed

    def _hit(self, redis: Redis) -> bool:
        now = self.timer()
        window, offset = divmod(now, self.duration)
        current_key = f"{KEY_PREFIX}{self.key}:{int(window)}"
        previous_key = f"{KEY_PREFIX}{self.key}:{int(window) - 1}"
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
