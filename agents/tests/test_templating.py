"""`{{placeholder}}` rendering of agent templates."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from agents.templating import current_date_text, placeholders, render_template


def test_placeholders_are_replaced():
    template = "Goal: {{objective}}\nSteps left: {{ stepsRemaining }}\nGoal again: {{objective}}"

    rendered = render_template(template, {"objective": "Find X", "stepsRemaining": 4})

    assert rendered == "Goal: Find X\nSteps left: 4\nGoal again: Find X"


def test_structured_values_are_json_and_none_is_empty():
    rendered = render_template(
        "{{memory}}|{{list}}|{{nothing}}",
        {"memory": {"a": 1, "ü": "é"}, "list": ["x", 2], "nothing": None},
    )

    assert rendered == '{"a": 1, "ü": "é"}|["x", 2]|'


def test_unknown_placeholders_stay_and_are_logged_without_the_prompt(caplog):
    template = "SECRET PROMPT TEXT {{known}} and {{unknown}} and {{other.thing}}"

    with caplog.at_level(logging.DEBUG, logger="agents.templating"):
        rendered = render_template(template, {"known": "yes"})

    assert rendered == "SECRET PROMPT TEXT yes and {{unknown}} and {{other.thing}}"
    assert "unknown" in caplog.text and "other.thing" in caplog.text
    assert "SECRET PROMPT TEXT" not in caplog.text


def test_values_are_not_rendered_again():
    # Text from users or tools must not expand placeholders.
    rendered = render_template("{{a}} {{b}}", {"a": "{{b}}", "b": "B"})

    assert rendered == "{{b}} B"


def test_single_braces_and_json_are_untouched():
    template = 'Reply as {"key": "value"} and {not a placeholder} {{ }}'

    assert render_template(template, {}) == template


def test_placeholders_lists_names_in_order():
    assert placeholders("{{b}} {{a}} {{ b }}") == ["b", "a"]


def test_current_date_is_iso_with_zone():
    moment = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC)

    assert current_date_text(moment) == "2026-03-04T05:06:07+00:00"
    assert current_date_text().endswith("+00:00")
