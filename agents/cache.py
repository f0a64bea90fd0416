"""The active agent of a name, kept by each process between uses and retired by one version
number in Redis that every write to an agent bumps: a DAG node reads one Redis key instead of
querying its agent.

How it stays correct (the versioned entries of config/list_cache.py, under a version of their own):
- Every write to an agent calls `agents_changed()`: saves and deletes through signals
  (agents/apps.py), `.update()` calls by hand (a test lists them). It bumps the version at once
  and again once the transaction commits, so an agent read before the commit, and kept under the
  version of that moment, is never served after it.
- A reader reads the version, then (on a miss) the agent, and keeps it under the version read
  *before* the query. An agent is served only under the current version: an activation is seen
  by the very next read after it commits, in every process.
- Inside a transaction nothing is kept: its reads may see rows it has not committed yet.
- Redis away, or the version key missing (a restart): the agent is read from the database each
  time. A lost key starts again from the clock, above every number it held, and a kept agent
  also expires after KEEP_SECONDS, which bounds how long a bump Redis never received can matter.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.db import connections

from agents.models import Agent
from agents.selectors import agent_get_active
from config.list_cache import version_bump, version_changed, version_now

AGENTS_VERSION = "agents-version"
# The longest a kept agent can outlive a bump Redis never received.
KEEP_SECONDS = 60.0


@dataclass(frozen=True)
class _Kept:
    version: int
    until: float
    agent: Agent | None


_kept: dict[tuple[str, str], _Kept] = {}
_kept_lock = threading.Lock()


def agents_changed(*, using: str = "default") -> None:
    """Retire every agent kept by any process: call after any write to an agent (saves and
    deletes are covered by signals; call it after `.update()`)."""
    version_changed(AGENTS_VERSION, using=using)


def agents_retire(*, using: str = "default") -> None:
    """Retire every kept agent now, outside any transaction's life (tests whose rows are rolled
    back or flushed, operators)."""
    version_bump(AGENTS_VERSION, using=using)


def agent_active(*, name: str, using: str = "default") -> Agent | None:
    """`agent_get_active(name=...)`, kept between calls while no agent changes.

    The agent returned may be shared with other threads of the process: read it, never change
    it."""
    if connections[using].in_atomic_block:
        return agent_get_active(name=name)
    version = version_now(AGENTS_VERSION, using=using)
    if version is None:
        return agent_get_active(name=name)
    key = (using, name)
    kept = _kept.get(key)
    if kept is not None and kept.version == version and kept.until > time.monotonic():
        return kept.agent
    agent = agent_get_active(name=name)
    with _kept_lock:
        _kept[key] = _Kept(version, time.monotonic() + KEEP_SECONDS, agent)
    return agent
