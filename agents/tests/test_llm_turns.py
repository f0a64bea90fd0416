"""Turns to send LLM requests (agents/llm/turns.py): one thread of a process prepares its request
at a time, the turn passes on as soon as the request has left (not when its reply comes), and a
turn that runs long holds the others up only for a moment."""

from __future__ import annotations

import threading

import pytest

from agents.llm import turns
from agents.llm.client import chat
from agents.llm.turns import request_turn, turn_over
from tests.fakes.openai_server import ChatReply

WAIT = 10.0


class TurnTaker:
    """A thread that takes a turn, says so (`entered`), and stays in its block until `leave()`
    (ending its turn at once, as a request leaving does, with `pass_on`)."""

    def __init__(self, *, pass_on: bool = False) -> None:
        self.entered = threading.Event()
        self.left = threading.Event()

        def body() -> None:
            with request_turn():
                self.entered.set()
                if pass_on:
                    turn_over()
                self.left.wait(WAIT)

        self.thread = threading.Thread(target=body, daemon=True)
        self.thread.start()

    def leave(self) -> None:
        self.left.set()
        self.thread.join(WAIT)


def test_one_thread_at_a_time_prepares_its_request(monkeypatch):
    monkeypatch.setattr(turns, "TURN_WAIT_SECONDS", 30.0)
    first = TurnTaker()
    assert first.entered.wait(WAIT)
    second = TurnTaker()

    assert not second.entered.wait(0.2)  # the first still holds the turn
    first.leave()  # its block ends: the turn passes on
    assert second.entered.wait(WAIT)
    second.leave()


def test_the_turn_passes_on_once_the_request_has_left(monkeypatch):
    monkeypatch.setattr(turns, "TURN_WAIT_SECONDS", 30.0)
    first = TurnTaker(pass_on=True)
    assert first.entered.wait(WAIT)

    second = TurnTaker()
    assert second.entered.wait(WAIT)  # while the first is still in its block
    assert first.thread.is_alive()
    first.leave()
    second.leave()


def test_a_turn_that_runs_long_holds_the_others_up_only_for_a_moment(monkeypatch):
    monkeypatch.setattr(turns, "TURN_WAIT_SECONDS", 0.05)
    first = TurnTaker()
    assert first.entered.wait(WAIT)

    second = TurnTaker()
    assert second.entered.wait(WAIT)  # went ahead without the turn
    second.leave()
    first.leave()
    # The first turn was still given back when its block ended: the next one gets it.
    monkeypatch.setattr(turns, "TURN_WAIT_SECONDS", 30.0)
    third = TurnTaker()
    assert third.entered.wait(WAIT)
    third.leave()


@pytest.mark.django_db
def test_an_llm_request_gives_up_its_turn_while_it_waits_for_the_reply(fake_llm, monkeypatch):
    """The SDK client ends the turn when the request goes out: another thread prepares its own
    request while the first one's reply is still on its way."""
    monkeypatch.setattr(turns, "TURN_WAIT_SECONDS", 30.0)
    arrived, release = threading.Event(), threading.Event()

    def held_reply(_body: dict) -> ChatReply:
        arrived.set()
        release.wait(WAIT)
        return ChatReply(content="late")

    fake_llm.responder = held_reply
    replies: list[str | None] = []

    def ask() -> None:
        with request_turn():
            replies.append(chat(messages=[{"role": "user", "content": "hello"}]).content)

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    assert arrived.wait(WAIT)
    following = TurnTaker()
    try:
        assert following.entered.wait(5)  # not 30 s: the first request no longer holds it
    finally:
        release.set()
        following.leave()
        asking.join(WAIT)
    assert replies == ["late"]
