"""Identifiers (config/api/ids.py): the clients' format, and bare ids that a management command
can take as an argument (one starting with `-` would read as an option)."""

from __future__ import annotations

import secrets

from config.api.ids import id_pattern, new_id


def test_a_bare_id_never_starts_with_a_dash(monkeypatch):
    drawn = iter(["-starts-with-dash", "Xfine_id-1234567"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda _size: next(drawn))

    assert new_id() == "Xfine_id-1234567"


def test_a_prefixed_id_keeps_whatever_was_drawn(monkeypatch):
    monkeypatch.setattr(secrets, "token_urlsafe", lambda _size: "-abcdefghijklmno")

    assert new_id("dag-exec") == "dag-exec_-abcdefghijklmno"


def test_fresh_ids_have_the_clients_format():
    assert all(id_pattern().match(new_id()) for _ in range(200))
    assert all(id_pattern("sub-step").match(new_id("sub-step")) for _ in range(200))
