"""Calls that many threads of one process make at once, served together: whichever thread gets
its turn first runs every call waiting at that moment as one batch, and the others find their
answer ready when their turn comes.

For writes that queue on one lock anyway (SQLite lets one writer in at a time; see
config.db.write_transaction): the twenty nodes of a fan-out get their LLM replies within a few
milliseconds of each other, and recording each result in a transaction of its own made them
take turns, each turn slowed by the others' work holding the interpreter. Combined, the results
that arrive while one transaction runs are recorded together by the next
(`dags.execution.services.sub_step_complete`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class _Call(Generic[Item, Answer]):
    __slots__ = ("answer", "done", "error", "item")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.answer: Answer | None = None
        self.error: BaseException | None = None
        self.done = False


class Combiner(Generic[Item, Answer]):
    """`submit(item)` from any thread returns `run([..., item, ...])`'s answer for that item.

    `run` takes the items waiting together and returns one answer per item, in their order. It
    runs in the thread whose turn it is, one batch at a time; if it raises, every call of that
    batch raises the same error.
    """

    def __init__(self, run: Callable[[Sequence[Item]], Sequence[Answer]]) -> None:
        self._run = run
        self._turn = threading.Lock()  # one batch at a time
        self._waiting_lock = threading.Lock()
        self._waiting: list[_Call[Item, Answer]] = []

    def waiting(self) -> int:
        """How many calls wait for the next batch."""
        with self._waiting_lock:
            return len(self._waiting)

    def submit(self, item: Item) -> Answer:
        call: _Call[Item, Answer] = _Call(item)
        with self._waiting_lock:
            self._waiting.append(call)
        with self._turn:
            if not call.done:  # no earlier batch took it: this thread runs the next one
                with self._waiting_lock:
                    batch, self._waiting = self._waiting, []
                try:
                    answers = self._run([waiting.item for waiting in batch])
                    if len(answers) != len(batch):
                        raise RuntimeError(f"{len(answers)} answers for {len(batch)} calls")
                    for waiting, answer in zip(batch, answers, strict=True):
                        waiting.answer = answer
                except BaseException as error:
                    for waiting in batch:
                        waiting.error = error
                finally:
                    for waiting in batch:
                        waiting.done = True
        if call.error is not None:
            raise call.error
        return call.answer  # type: ignore[return-value]
