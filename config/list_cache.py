"""Rendered pages of busy API lists, shared by every web process through Redis and invalidated
by one version number that every write to a listed row bumps.

How it stays correct:
- A writer calls `lists_changed()` after changing a row a cached list shows. It bumps the
  version at once (a reader inside the writer's own transaction sees the change) and again once
  the transaction commits (a reader that read the bumped version before the commit could only
  see the old rows; the second bump retires whatever it stored).
- A reader reads the version and the page in one round trip. A page is served only when it was
  stored under the current version. On a miss the reader builds the page from the database and
  stores it under the version it read *before* querying: data read after a bump is never older
  than the writes that bump announced, and a page built before a bump is stored under the old
  version, which no reader accepts any more.
- The version starts from the clock (nanoseconds) whenever its key is missing, so a version
  key lost with Redis never comes back as a number some surviving page was stored under.
- Redis away: readers build every page themselves (never an error); a bump that fails is logged
  and pages expire after PAGE_SECONDS, which bounds how long a lost bump can show old rows.
"""

from __future__ import annotations

import logging
import time

from django.db import connections, transaction

from config.logs import OccasionalWarning
from config.shared_redis import shared_redis

logger = logging.getLogger(__name__)
_warn = OccasionalWarning(logger)

KEY_PREFIX = "aa:lists:"
# The longest a page can outlive a bump Redis never received (see the module docstring).
PAGE_SECONDS = 60


def _namespace(using: str) -> str:
    # Two deployments (or test databases) sharing one Redis must not read each other's pages.
    return f"{KEY_PREFIX}{connections[using].settings_dict['NAME']}:"


def _fresh_version() -> int:
    """Where a lost version key (a Redis restart, an eviction) starts again: above every version
    it held before, so no page stored under an old number can match a new one."""
    return time.time_ns()


def _bump(using: str) -> None:
    key = f"{_namespace(using)}version"
    try:
        pipe = shared_redis().pipeline(transaction=False)
        pipe.set(key, _fresh_version(), nx=True)
        pipe.incr(key)
        pipe.execute()
    except Exception as error:  # Redis away: pages expire on their own
        _warn(f"cached lists not invalidated ({type(error).__name__}: {error})")


def lists_changed(*, using: str = "default") -> None:
    """Retire every cached list page: call after any write that changes what a list shows
    (saves and deletes of listed models are covered by signals; call it after `.update()`)."""
    _bump(using)
    transaction.on_commit(lambda: _bump(using), using=using)


def pages_retire(*, using: str = "default") -> None:
    """Retire every cached list page now, outside any transaction's life (tests whose rows are
    rolled back, operators)."""
    _bump(using)


def page_get(key: str, *, using: str = "default") -> tuple[int | None, bytes | None]:
    """(the current version, the page stored under it or None); (None, None) when Redis
    cannot be reached, and the caller must not store what it builds."""
    namespace = _namespace(using)
    try:
        version, stored = shared_redis().mget(f"{namespace}version", f"{namespace}page:{key}")
    except Exception as error:
        _warn(f"cached lists unavailable ({type(error).__name__}: {error})")
        return None, None
    if version is None:
        try:
            shared_redis().set(f"{namespace}version", _fresh_version(), nx=True)
        except Exception as error:
            _warn(f"cached lists unavailable ({type(error).__name__}: {error})")
        return None, None
    current = int(version)
    if isinstance(stored, bytes):
        tag, _, page = stored.partition(b"\n")
        if tag == str(current).encode():
            return current, page
    return current, None


def page_put(key: str, version: int, page: bytes, *, using: str = "default") -> None:
    """Store `page`, built from rows read after `version` was read, under that version."""
    namespace = _namespace(using)
    try:
        shared_redis().set(f"{namespace}page:{key}", b"%d\n%s" % (version, page), ex=PAGE_SECONDS)
    except Exception as error:
        _warn(f"cached lists unavailable ({type(error).__name__}: {error})")
