"""The bounds of what the step loop sends to the model."""

from __future__ import annotations

import json

from runs.conversation import (
    constraints_text,
    opening_message,
    tool_message,
    trim_conversation,
    working_memory_text,
)


def turn(index: int, size: int) -> list[dict]:
    call = {"id": f"c{index}", "type": "function", "function": {"name": "t", "arguments": "{}"}}
    return [
        {"role": "assistant", "content": f"step {index}", "tool_calls": [call]},
        tool_message(f"c{index}", "x" * size),
    ]


def test_constraints_accept_a_string_a_list_or_an_object():
    assert constraints_text("Only use primary sources.") == "Only use primary sources."
    assert constraints_text(["a", "b"]) == "- a\n- b"
    as_object = constraints_text({"tone": "formal", "maxWords": 200})
    assert as_object == "- tone: formal\n- maxWords: 200"
    assert constraints_text(None) == "None."


def test_trimming_keeps_the_opening_and_the_newest_whole_turns():
    opening = {"role": "user", "content": "Objective: x"}
    turns = [turn(index, 1000) for index in range(10)]

    messages = trim_conversation(opening, turns, limit=3500)

    assert messages[0] == opening
    assert "7 earlier step(s) are left out" in messages[1]["content"]
    kept = [m for m in messages if m["role"] == "assistant"]
    assert [m["content"] for m in kept] == ["step 7", "step 8", "step 9"]
    # every tool message directly follows the assistant message that called it
    for position, message in enumerate(messages):
        if message["role"] == "tool":
            caller = messages[position - 1]
            assert caller["tool_calls"][0]["id"] == message["tool_call_id"]
    assert sum(len(m.get("content") or "") for m in messages) < 3500


def test_the_newest_turn_is_kept_even_when_it_alone_is_too_big():
    opening = {"role": "user", "content": "Objective"}
    messages = trim_conversation(opening, [turn(0, 10), turn(1, 50_000)], limit=1000)
    assert [m["role"] for m in messages] == ["user", "user", "assistant", "tool"]


def test_working_memory_in_the_prompt_is_bounded_and_prefers_new_entries():
    memory = {f"step_{n}_fetchPage_0": {"text": "y" * 5000} for n in range(1, 30)}
    memory["summary"] = "not shown"

    text = working_memory_text(memory, limit=3000)

    assert len(text) < 3600
    assert "step_29_fetchPage_0" in text
    assert "step_1_fetchPage_0" not in text
    assert "older entries are not shown" in text
    assert 'not shown"' not in text


def test_working_memory_small_enough_is_shown_whole():
    memory = {"step_1_readFile_0": {"content": "abc"}}
    assert json.loads(working_memory_text(memory, limit=3000)) == memory


def test_opening_message_lists_earlier_notes():
    text = opening_message("Track solar prices weekly", ["Prices fell 3%.", ""])
    assert "Track solar prices weekly" in text
    assert "[1] Prices fell 3%." in text
    assert "[2]" not in text
