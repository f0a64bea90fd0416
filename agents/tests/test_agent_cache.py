"""The agents kept by each process (agents/cache.py): served while no agent changed, never after
a change, from any process.

Writes are committed (transactional database) and each read runs on another thread with its own
database connection, outside any transaction, as a worker's node does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from agents.cache import agent_active
from agents.models import Agent
from agents.services import agent_activate, agent_create, agent_update
from tests.bulk_writes import bulk_writes
from tests.elsewhere import run_elsewhere
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db(transaction=True)


def elsewhere(read: Callable[[], Any]) -> tuple[Any, int]:
    """What `read` returns on another thread (its own connection, no transaction), and how
    many statements it ran."""
    value, statements = run_elsewhere(read)
    return value, len(statements)


def active(name: str = "writer") -> tuple[Agent | None, int]:
    return elsewhere(lambda: agent_active(name=name))


def test_a_repeated_read_runs_no_statement():
    AgentFactory(name="writer", prompt_template="One.", active=True)

    first, first_statements = active()
    again, statements = active()

    assert first is not None and first.prompt_template == "One."
    assert first_statements == 1
    assert again is first and statements == 0


def test_activating_another_version_is_seen_by_the_very_next_read():
    old = AgentFactory(name="writer", version="1", prompt_template="Old.", active=True)
    new = AgentFactory(name="writer", version="2", prompt_template="New.", active=False)
    assert active()[0].pk == old.pk

    agent_activate(agent=new)

    assert active()[0].pk == new.pk


def test_a_new_active_version_an_edit_and_a_delete_are_each_seen_at_once():
    agent = AgentFactory(name="writer", version="1", prompt_template="One.", active=True)
    assert active()[0].prompt_template == "One."

    agent_update(agent=agent, changes={"prompt_template": "Two."})
    assert active()[0].prompt_template == "Two."

    created = agent_create(name="writer", version="2", prompt_template="Three.", active=True)
    assert active()[0].pk == created.pk

    created.delete()  # the API refuses to delete an active version; a delete is seen all the same
    assert active()[0] is None


def test_a_missing_agent_is_kept_until_one_is_made():
    assert active() == (None, 1)
    assert active() == (None, 0)

    AgentFactory(name="writer", active=True)

    assert active()[0] is not None


def test_nothing_is_kept_inside_a_transaction():
    AgentFactory(name="writer", prompt_template="One.", active=True)

    def inside() -> list[int]:
        counts = []
        with transaction.atomic():
            for _ in range(2):
                with CaptureQueriesContext(connection) as queries:
                    agent_active(name="writer")
                counts.append(len(queries.captured_queries))
        return counts

    assert elsewhere(inside)[0] == [1, 1]


def test_without_redis_every_read_goes_to_the_database(settings):
    AgentFactory(name="writer", active=True)
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there

    assert active()[1] == 1
    assert active()[1] == 1


def test_a_lost_version_key_is_a_miss():
    from agents.cache import AGENTS_VERSION
    from config.shared_redis import shared_redis

    AgentFactory(name="writer", prompt_template="One.", active=True)
    active()
    Agent.objects.filter(name="writer").update(prompt_template="Changed behind its back.")
    for key in shared_redis().scan_iter(f"*{AGENTS_VERSION}"):  # as a Redis restart would
        shared_redis().delete(key)

    assert active()[0].prompt_template == "Changed behind its back."


# --- the writes that send no signal -----------------------------------------------------------
def test_every_bulk_write_to_agents_retires_the_kept_agents():
    writes = {key: site for key, site in bulk_writes().items() if "Agent" in site.models}
    assert sorted(writes) == [
        ("agents/services.py", "agent_activate"),
        ("agents/services.py", "agent_create"),
    ]
    for site in writes.values():
        assert "agents_changed" in site.calls, f"{site.path}:{site.function} writes without it"
