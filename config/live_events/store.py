"""The event store: the events of one kind of subject (a DAG execution, a goal run) in the
database with a per-subject sequence number, each published on commit to the subject's group
(publisher.py). The database is the source of truth; Redis pub/sub is only transport."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import orjson
from django.db import connection, models, transaction
from django.db.models import F
from django.utils.timezone import now

import config.live_events.publisher as publisher
from config.access import acting_user, visible_to
from config.api.formatting import epoch_ms
from config.api.renderers import dumps
from config.claims import claim_one
from config.db import write_transaction
from config.errors import NotFound

logger = logging.getLogger(__name__)

# A subject whose status is final but whose last event is not terminal (the terminal event may be
# a moment behind the status change, or was pruned) counts as settled after this long.
SETTLE_GRACE = timedelta(seconds=5)

_GROUP_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,90}$")


@dataclass(frozen=True)
class EventLayout:
    """Where an event's own keys go on the wire: `leading` before `timestamp`, `trailing` after."""

    leading: tuple[str, ...] = ()
    trailing: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class FeedState:
    """What a follower needs at one moment: the snapshot, the events after a position, and
    whether the subject is finished with nothing more to come."""

    snapshot: dict[str, Any]
    events: list[StoredEvent]
    last_seq: int
    settled: bool


@dataclass
class EventStore:
    """Storage, wire format and publication of one kind of subject's events.

    `subject_model` has `status` and `last_event_seq`; `event_model` has a FK named
    `subject_field` to it plus `seq`, `type`, `payload` and `created_at`.
    """

    name: str
    # Both have Django's default `objects` manager (`type[Model]` does not promise one: hence
    # the `type: ignore[attr-defined]` where it is used).
    subject_model: type[models.Model]
    event_model: type[models.Model]
    subject_field: str
    subject_key: str
    layouts: Mapping[str, EventLayout]
    terminal_types: frozenset[str]
    final_statuses: frozenset[str]
    snapshot_type: str
    snapshot_fields: Callable[[Any], dict[str, Any]]
    not_found_message: Callable[[str], str]
    settle_grace: timedelta = field(default=SETTLE_GRACE)
    # The subject's columns `snapshot_fields` reads: a read loads only these (with `status` and
    # `last_event_seq`), not the whole row (a plan, a result). Empty: the whole row.
    snapshot_columns: tuple[str, ...] = ()

    # --- wire format ----------------------------------------------------------------------------

    def wire(self, event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The event in the key order clients expect: `type`, the subject id, the layout's leading
        keys, `timestamp`, the trailing keys, then any other keys in the order given.

        Applied on every send, because PostgreSQL's jsonb does not keep the stored key order.
        """
        layout = self.layouts.get(event_type, EventLayout())
        ordered: dict[str, Any] = {"type": event_type, self.subject_key: data.get(self.subject_key)}
        for key in layout.leading:
            ordered[key] = data.get(key)
        ordered["timestamp"] = data.get("timestamp")
        for key in layout.trailing:
            ordered[key] = data.get(key)
        for key, value in data.items():
            if key not in ordered:
                ordered[key] = value
        return ordered

    def group_name(self, subject_id: str) -> str:
        """The subject's group: the name its events are published under (short and plain: an id
        outside [A-Za-z0-9._-] is hashed)."""
        name = f"{self.name}.{subject_id}"
        if _GROUP_NAME_RE.match(name):
            return name
        return f"{self.name}.h.{hashlib.sha256(subject_id.encode()).hexdigest()[:40]}"

    def visible(self, subject_id: str, viewer: Any) -> bool:
        """Whether `viewer` may follow the subject (config/access.py's rule on its `owner`).

        Streams answer a subject the viewer may not see exactly as a missing one.
        """
        subjects = self.subject_model.objects.filter(pk=subject_id)  # type: ignore[attr-defined]
        return visible_to(subjects, viewer).exists()

    def visible_to_user(self, subject_id: str, user: Any) -> bool:
        """`visible` for a stream's authenticated user (or the anonymous user when the API's
        authentication is off, acting as the trusted local user). Synchronous: it may query."""
        return self.visible(subject_id, acting_user(user))

    # --- writing --------------------------------------------------------------------------------

    def emit(self, *, subject_id: str, event_type: str, payload: Mapping[str, Any] | None) -> Any:
        """Store the event with the subject's next sequence number and publish it on commit.

        Runs inside the caller's transaction when there is one (the event then becomes visible,
        and is published, only if that transaction commits), otherwise in its own.
        """
        return self.emit_many(subject_id=subject_id, events=[(event_type, payload)])[0]

    def emit_many(
        self,
        *,
        subject_id: str,
        events: Sequence[tuple[str, Mapping[str, Any] | None]],
        last_seq: int | None = None,
    ) -> list[Any]:
        """Store several events of one subject, in order, with consecutive sequence numbers and
        one INSERT; publish each on commit (as `emit`).

        `last_seq`: the caller already took the numbers, by raising the subject's
        `last_event_seq` by `len(events)` in its own update (in this transaction), which left it
        at `last_seq`. Otherwise they are taken here.
        """
        for event_type, _payload in events:
            if event_type not in self.layouts:
                raise ValueError(f"unknown {self.name} event type {event_type!r}")
        if not events:
            return []
        # Inside the caller's transaction the statements simply join it: a savepoint would only
        # add two statements per event, and an error here fails the caller's change anyway.
        scope = contextlib.nullcontext() if connection.in_atomic_block else write_transaction()
        with scope:
            if last_seq is None:
                last_seq = self._next_seq(subject_id, len(events))
                if last_seq is None:
                    raise NotFound(self.not_found_message(subject_id))
            first_seq = last_seq - len(events) + 1
            created_at = now()
            timestamp = epoch_ms(created_at)
            rows, messages = [], []
            for seq, (event_type, payload) in enumerate(events, start=first_seq):
                given = dict(payload or {})
                layout = self.layouts[event_type]
                missing = [key for key in (*layout.leading, *layout.trailing) if key not in given]
                if missing:
                    logger.warning("%s event %s emitted without %s", self.name, event_type, missing)
                given.update(
                    {"type": event_type, self.subject_key: subject_id, "timestamp": timestamp}
                )
                # Through JSON once, so live and replayed copies are identical (Decimal,
                # datetime...).
                data = self.wire(event_type, orjson.loads(dumps(given)))
                rows.append(
                    self.event_model(
                        **{f"{self.subject_field}_id": subject_id},
                        seq=seq,
                        type=event_type,
                        payload=data,
                        created_at=created_at,
                    )
                )
                messages.append({"seq": seq, "event": event_type, "data": data})
            stored = self.event_model.objects.bulk_create(rows)  # type: ignore[attr-defined]
            group = self.group_name(subject_id)
            # One hand-over per commit, not per event.
            transaction.on_commit(partial(publisher.publish, group, *messages))
        return stored

    def _next_seq(self, subject_id: str, count: int = 1) -> int | None:
        """Take the subject's next `count` sequence numbers; the last of them, or None when the
        subject does not exist.

        A claim (config.claims): one statement raises the counter and returns it, so two
        processes never take the same number, and the row stays locked until commit, so events
        commit in the order of their numbers (a reader bounded by the subject's `last_event_seq`
        never misses one that commits later with a lower number).
        """
        subject = claim_one(
            self.subject_model.objects.filter(pk=subject_id),  # type: ignore[attr-defined]
            changes={"last_event_seq": F("last_event_seq") + count},
            returning=["last_event_seq"],
        )
        return None if subject is None else subject.last_event_seq

    # --- reading --------------------------------------------------------------------------------

    def read(self, subject_id: str, after_seq: int) -> FeedState | None:
        """The snapshot and the stored events after `after_seq` (None when the subject is gone)."""
        subjects = self.subject_model.objects.filter(pk=subject_id)  # type: ignore[attr-defined]
        if self.snapshot_columns:
            subjects = subjects.only("status", "last_event_seq", *self.snapshot_columns)
        subject = next(iter(subjects[:1]), None)  # no ORDER BY: there is one row at most
        if subject is None:
            return None
        # Everything below is bounded by the sequence number read with the subject: events up to
        # it were committed with (or before) that row. An event committed after the subject was
        # read must not count here, or a terminal event could make the feed "settled" without
        # being among the events returned, and the follower would stop one event short.
        last_seq = subject.last_event_seq
        own_events = self.event_model.objects.filter(  # type: ignore[attr-defined]
            **{f"{self.subject_field}_id": subject_id}, seq__lte=last_seq
        )
        rows = list(
            own_events.filter(seq__gt=after_seq)
            .order_by("seq")
            .values_list("seq", "type", "payload", "created_at")
        )
        events = [StoredEvent(seq, kind, self.wire(kind, data)) for seq, kind, data, _ in rows]
        last: tuple[str, Any] | None
        if rows:  # the last of them is the last event up to last_seq
            last = (rows[-1][1], rows[-1][3])
        elif last_seq > 0:
            last = own_events.order_by("-seq").values_list("type", "created_at").first()
        else:
            last = None
        snapshot = self.wire(
            self.snapshot_type,
            {
                self.subject_key: subject_id,
                "timestamp": epoch_ms(now()),
                **self.snapshot_fields(subject),
            },
        )
        return FeedState(
            snapshot=snapshot,
            events=events,
            last_seq=last_seq,
            settled=self._settled(subject.status, last),
        )

    def _settled(self, status: str, last: tuple[str, Any] | None) -> bool:
        """Finished, with no further event to expect."""
        if last is not None and last[0] in self.terminal_types:
            return True
        if status not in self.final_statuses:
            return False
        return last is None or last[1] <= now() - self.settle_grace
