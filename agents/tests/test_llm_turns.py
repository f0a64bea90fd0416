"""Turns to send LLM requests (agents/llm/turns.py): one thread of a process prepares its request
at a time, the turn passes on as soon as the request has left (not when its reply comes), and a
turn that runs long holds the others up only for a moment."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from agents.llm import turns
from agents.llm.client import chat
from agents.llm.turns import request_turn, turn_over
from tests.fakes.openai_server import ChatReply

WAIT = 10.0


def in_turn(entered: threading.Event, leave: threading.Event, *, pass_on: bool = False):
    """A thread body: take a turn, say so, and stay in the block until `leave` (ending the turn
    first, as a request leaving does, with `pass_on`)."""

    def body() -> None:
        with request_turn():
            entered.set()
            if pass_on:
                turn_over()
            leave.wait(WAIT)

    return body


def started(body: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def test_one_thread_at_a_time_prepares_its_request(monkeypatch):
    monkeypatch.setattr(turns, "TURN_WAIT_SECONDS", 30.0)
    first_in, first_out = threading.Event(), threading.Event()
    second_in, second_out = threading.Event(), threading.Event()
    first = started(in_turn(first_in, first_out))
    assert first_in.wait(WAIT)
    second = started(in_turn(second_in, second_out))

    assert not second_in.wait(0.2)  # the first still holds the turn
    first_out.set()  # its block ends: the turn passes on
    assert second_in.wait(WAIT)
    second_out.set()
    first.join(WAIT)
    second.join(WAIT)


def test_the_turn_passes_on_once_the_request_has_left(monkeypatch):
    monkeypatch.setattr(turns, "TURN_WAIT_SECONDS", 30.0)
    first_in, first_out = threading.Event(), threading.Event()
    second_in, second_out = threading.Event(), threading.Event()
    first = started(in_turn(first_in, first_out, pass_on=True))
    assert first_in.wait(WAIT)

    second = started(in_turn(second_in, second_out))
    assert second_in.wait(WAIT)  # while the first is still in its block
    assert not first_out.is_set()
    first_out.set()
    second_out.set()
    first.join(WAIT)
    second.join(WAIT)


def test_a_turn_that_runs_long_holds_the_others_up_only_for_a_moment(monkeypatch):
    monkeypatch.setattr(turns, "TURN_WAIT_SECONDS", 0.05)
    first_in, first_out = threading.Event(), threading.Event()
    second_in, second_out = threading.Event(), threading.Event()
    first = started(in_turn(first_in, first_out))
    assert first_in.wait(WAIT)

    second = started(in_turn(second_in, second_out))
    assert second_in.wait(WAIT)  # went ahead without the turn
    second_out.set()
    second.join(WAIT)
    first_out.set()
    first.join(WAIT)
    # The first turn was still given back when its block ended: the next one gets it.
    third_in, third_out = threading.Event(), threading.Event()
    monkeypatch.setattr(turns, "TURN_WAIT_SECONDS", 30.0)
    third = started(in_turn(third_in, third_out))
    assert third_in.wait(WAIT)
    third_out.set()
    third.join(WAIT)


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

    asking = started(ask)
    assert arrived.wait(WAIT)
    next_in, next_out = threading.Event(), threading.Event()
    following = started(in_turn(next_in, next_out))
    try:
        assert next_in.wait(5)  # not 30 s: the first request no longer holds the turn
    finally:
        release.set()
        next_out.set()
        asking.join(WAIT)
        following.join(WAIT)
    assert replies == ["late"]
