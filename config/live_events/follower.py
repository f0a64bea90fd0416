"""A follower's position in a subject's event sequence: live events it already sent are
dropped, and a gap is filled from the database."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from channels.db import database_sync_to_async

from config.live_events.store import EventStore, StoredEvent

logger = logging.getLogger(__name__)


class Follower:
    """One subscriber's position in a subject's event sequence.

    Live events at or below the position are dropped (already sent from the replay or twice on
    Redis); a live event beyond the next number means something was missed, so the missing
    ones are read from the database first.
    """

    def __init__(self, store: EventStore, subject_id: str, position: int) -> None:
        self.store = store
        self.subject_id = subject_id
        self.position = position
        self.finished = False

    def accept(self, events: Iterable[StoredEvent]) -> list[StoredEvent]:
        fresh = []
        for event in events:
            if event.seq > self.position:
                fresh.append(event)
                self.position = event.seq
        return fresh

    def take(self, live: object) -> list[StoredEvent] | None:
        """`on_message` without the database: None when it would have to read it (a gap or a
        marker). Live events mostly arrive in order, and this keeps them off the slow path."""
        if not isinstance(live, StoredEvent):
            return None
        if live.seq <= self.position:
            return []
        if live.seq == self.position + 1:
            self.position = live.seq
            return [live]
        return None

    async def on_message(self, live: object) -> list[StoredEvent]:
        """The events to send for an inbox item: a published event, or a marker that some may
        have been missed (then the database says what)."""
        if not isinstance(live, StoredEvent):
            return await self.catch_up()
        if live.seq <= self.position:
            return []
        if live.seq == self.position + 1:
            return self.accept([live])
        events = await self.catch_up()
        if live.seq > self.position:
            # Not in the database (yet): deliver rather than lose it.
            logger.warning(
                "%s %s: event %s arrived before %s",
                self.store.name,
                self.subject_id,
                live.seq,
                self.position + 1,
            )
            events += self.accept([live])
        return events

    async def catch_up(self) -> list[StoredEvent]:
        """Stored events after the position; marks the follower finished when the subject is
        gone or settled with nothing left."""
        state = await database_sync_to_async(self.store.read)(self.subject_id, self.position)
        if state is None:
            self.finished = True
            return []
        events = self.accept(state.events)
        if state.settled and self.position >= state.last_seq:
            self.finished = True
        return events

    def ends_with_terminal(self, events: list[StoredEvent]) -> bool:
        return bool(events) and events[-1].type in self.store.terminal_types
