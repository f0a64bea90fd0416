"""This process's own Redis client (config/shared_redis.py): one per process and settings,
shared by every thread, so requests do not open a connection each."""

from __future__ import annotations

import threading

from config.shared_redis import shared_redis


def test_threads_share_one_client_and_its_connections():
    shared_redis().ping()
    clients = []

    def grab() -> None:
        client = shared_redis()
        client.ping()
        clients.append(client)

    threads = [threading.Thread(target=grab) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(clients) == 3 and {id(client) for client in clients} == {id(shared_redis())}


def test_changed_settings_get_a_client_of_their_own(settings):
    first = shared_redis()
    settings.CACHE_REDIS_MAX_CONNECTIONS = 3
    assert shared_redis() is not first
    assert shared_redis().connection_pool.max_connections == 3
