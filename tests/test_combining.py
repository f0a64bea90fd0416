"""`config.combining.Combiner`: calls made while a batch runs are answered together by the next
one, each with its own answer; an error reaches every call of its batch and no other."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from config.combining import Combiner


def test_calls_waiting_while_a_batch_runs_are_served_by_one_batch_each_with_its_answer():
    batches: list[list[int]] = []
    first_inside = threading.Event()
    let_go = threading.Event()

    def run(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            first_inside.set()
            assert let_go.wait(10)
        return [item * 10 for item in items]

    combiner: Combiner[int, int] = Combiner(run)
    answers: dict[int, int] = {}

    def call(item: int) -> None:
        answers[item] = combiner.submit(item)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert first_inside.wait(10)
    others = [threading.Thread(target=call, args=(item,)) for item in range(1, 8)]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 10
    while combiner.waiting() < 7 and time.monotonic() < deadline:
        time.sleep(0.001)  # polls, with a deadline, for all seven to be queued
    let_go.set()
    for thread in [first, *others]:
        thread.join(10)

    assert answers == {item: item * 10 for item in range(8)}
    assert batches[0] == [0]
    assert sorted(batches[1]) == list(range(1, 8)) and len(batches) == 2


def test_an_error_reaches_every_call_of_its_batch_and_the_next_batch_runs():
    calls = 0

    def run(items: Sequence[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise LookupError("first batch failed")
        return list(items)

    combiner: Combiner[str, str] = Combiner(run)

    with pytest.raises(LookupError, match="first batch failed"):
        combiner.submit("a")
    assert combiner.submit("b") == "b"


def test_a_wrong_number_of_answers_is_an_error_not_a_wrong_answer():
    combiner: Combiner[str, str] = Combiner(lambda items: [])

    with pytest.raises(RuntimeError, match="0 answers for 1 calls"):
        combiner.submit("a")
