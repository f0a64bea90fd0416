"""Rendered pages of busy API lists, shared by every web process through Redis and invalidated
by one version number that every write to a listed row bumps. The same mechanism (`versioned_*`,
`version_changed`) keeps other families of entries under versions of their own (the token
cache of `config.api.authentication`, the agents workers keep in `agents.cache`).

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


# --- versioned entries: the mechanism, for any family of entries with a version of its own ------
def version_bump(name: str, *, using: str = "default") -> bool:
    """Retire every entry stored under version `name` now; False when Redis could not be told."""
    key = f"{_namespace(using)}{name}"
    try:
        pipe = shared_redis().pipeline(transaction=False)
        pipe.set(key, _fresh_version(), nx=True)
        pipe.incr(key)
        pipe.execute()
    except Exception as error:  # Redis away: entries expire on their own
        _warn(f"cached entries ({name}) not invalidated ({type(error).__name__}: {error})")
        return False
    return True


def version_changed(name: str, *, using: str = "default") -> None:
    """Retire the entries of version `name` now and again once the current transaction commits
    (see the module docstring)."""
    version_bump(name, using=using)
    transaction.on_commit(lambda: version_bump(name, using=using), using=using)


def version_now(name: str, *, using: str = "default") -> int | None:
    """Version `name` now, for entries a process keeps itself; None when Redis cannot be reached
    or had lost the key (then set again, from the clock), and nothing may be kept."""
    key = f"{_namespace(using)}{name}"
    try:
        client = shared_redis()
        version = client.get(key)
        if version is None:
            client.set(key, _fresh_version(), nx=True)
            return None
    except Exception as error:
        _warn(f"cached entries unavailable ({type(error).__name__}: {error})")
        return None
    return int(version)


def versioned_get(
    name: str, key: str, *, using: str = "default"
) -> tuple[int | None, bytes | None]:
    """(version `name` now, the entry `key` stored under it or None), in one round trip;
    (None, None) when Redis cannot be reached, and the caller must not store what it builds."""
    namespace = _namespace(using)
    try:
        version, stored = shared_redis().mget(f"{namespace}{name}", f"{namespace}{key}")
    except Exception as error:
        _warn(f"cached entries unavailable ({type(error).__name__}: {error})")
        return None, None
    if version is None:
        try:
            shared_redis().set(f"{namespace}{name}", _fresh_version(), nx=True)
        except Exception as error:
            _warn(f"cached entries unavailable ({type(error).__name__}: {error})")
        return None, None
    current = int(version)
    if isinstance(stored, bytes):
        tag, _, entry = stored.partition(b"\n")
        if tag == str(current).encode():
            return current, entry
    return current, None


def versioned_put(
    key: str, version: int, entry: bytes, *, seconds: int, using: str = "default"
) -> None:
    """Store `entry`, built from rows read after `version` was read, under that version."""
    try:
        shared_redis().set(f"{_namespace(using)}{key}", b"%d\n%s" % (version, entry), ex=seconds)
    except Exception as error:
        _warn(f"cached entries unavailable ({type(error).__name__}: {error})")


# --- list pages ----------------------------------------------------------------------------------
LISTS_VERSION = "version"


def lists_changed(*, using: str = "default") -> None:
    """Retire every cached list page: call after any write that changes what a list shows
    (saves and deletes of listed models are covered by signals; call it after `.update()`)."""
    version_changed(LISTS_VERSION, using=using)


def pages_retire(*, using: str = "default") -> None:
    """Retire every cached list page now, outside any transaction's life (tests whose rows are
    rolled back, operators)."""
    version_bump(LISTS_VERSION, using=using)


def page_get(key: str, *, using: str = "default") -> tuple[int | None, bytes | None]:
    """(the current version, the page stored under it or None); (None, None) when Redis
    cannot be reached, and the caller must not store what it builds."""
    return versioned_get(LISTS_VERSION, f"page:{key}", using=using)


def page_put(key: str, version: int, page: bytes, *, using: str = "default") -> None:
    """Store `page`, built from rows read after `version` was read, under that version."""
    versioned_put(f"page:{key}", version, page, seconds=PAGE_SECONDS, using=using)
