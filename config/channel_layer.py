"""The Channels layer: channels-redis, plus one question answered in one round trip.

Every stored event is published to its subject's group, and most of the time nobody follows
that subject. channels-redis's `group_send` spends two Redis round trips finding that out for
each event (drop expired members, then list them). `groups_with_members` asks for a whole batch
of groups at once, so the publisher (config.live_events) sends only to groups someone follows.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable

from channels_redis.core import RedisChannelLayer

# Drops the members that expired as `group_send` does, then counts those left, for each group.
_COUNT_LIVE_MEMBERS = """
local counts = {}
for i, key in ipairs(KEYS) do
    redis.call('ZREMRANGEBYSCORE', key, 0, ARGV[1])
    counts[i] = redis.call('ZCARD', key)
end
return counts
"""


class EventChannelLayer(RedisChannelLayer):
    async def groups_with_members(self, groups: Iterable[str]) -> set[str]:
        """The groups among `groups` that have at least one member: one call per Redis host."""
        by_host: dict[int, list[str]] = defaultdict(list)
        for group in dict.fromkeys(groups):
            assert self.require_valid_group_name(group), "Group name not valid"
            by_host[self.consistent_hash(group)].append(group)
        expired_before = int(time.time()) - self.group_expiry
        followed: set[str] = set()
        for index, names in by_host.items():
            connection = self.connection(index)
            counts = await connection.register_script(_COUNT_LIVE_MEMBERS)(
                keys=[self._group_key(name) for name in names], args=[expired_before]
            )
            followed.update(name for name, count in zip(names, counts, strict=True) if count)
        return followed
