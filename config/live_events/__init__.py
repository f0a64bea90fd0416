"""Durable live events: one way to store and publish them, one way to follow them.

An *event store* (store.py) keeps the events of one kind of subject (a DAG execution, a goal
run) in the database with a per-subject sequence number, and publishes each event on commit to
the subject's group on Redis pub/sub (publisher.py). Followers (the SSE views and the WebSocket
consumers) subscribe to the group (subscription.py; one Redis subscription per process and
subject, shared by the process's followers: hub.py) *before* reading the stored events, then
drop live events they already sent and re-read from the database when they notice a gap or the
hub reconnected (follower.py), so a subscriber that arrives late, reconnects or loses a message
in transit still receives every event exactly once, in order.

The database is the source of truth; Redis is only transport. Nothing here keeps state that
another web or worker process would need to see.
"""

from config.live_events.follower import Follower
from config.live_events.publisher import flush_published, publish
from config.live_events.store import (
    EventLayout,
    EventStore,
    FeedState,
    StoredEvent,
)
from config.live_events.subscription import RESYNC, TICK, Subscription

__all__ = [
    "RESYNC",
    "TICK",
    "EventLayout",
    "EventStore",
    "FeedState",
    "Follower",
    "StoredEvent",
    "Subscription",
    "flush_published",
    "publish",
]
