"""The UI's template filters and tags: one format for each kind of value."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.paginator import Paginator
from django.template import Context, RequestContext, Template
from django.test import RequestFactory
from django.utils import timezone

from ui.templatetags.ui import (
    cron_human,
    duration,
    nav_section,
    page_window,
    relative_words,
    reltime,
    usd,
)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (None, "—"),
        ("", "—"),
        ("abc", "—"),
        (0, "0 ms"),
        (850, "850 ms"),
        (4200, "4.2 s"),
        (59_940, "59.9 s"),
        (185_000, "3 min 05 s"),
        (7_380_000, "2 h 03 min"),
    ],
)
def test_duration_has_one_format(ms, text):
    assert duration(ms) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (0, "$0.0000"),
        ("0.5", "$0.5000"),
        (Decimal("0.000042"), "$0.000042"),
        (Decimal("0.0012345678"), "$0.001235"),
        (Decimal("1234.5"), "$1,234.5000"),
        (Decimal("0.0000001"), "<$0.000001"),
        (Decimal("-0.25"), "-$0.2500"),
        ("not money", "—"),
    ],
)
def test_usd_shows_four_to_six_decimals(value, text):
    assert usd(value) == text


def test_relative_time_in_words_with_the_absolute_time_as_tooltip():
    moment = timezone.now() - timedelta(minutes=5)
    html = str(reltime(moment))
    assert html.startswith(f'<time datetime="{moment.isoformat()}" title="')
    assert html.endswith(">5 min ago</time>")
    assert moment.strftime("%Y-%m-%d %H:%M") in html
    reference = timezone.now()
    assert relative_words(reference - timedelta(seconds=10), reference) == "just now"
    assert relative_words(reference - timedelta(hours=3), reference) == "3 h ago"
    assert relative_words(reference + timedelta(days=2), reference) == "in 2 d"
    assert relative_words(reference - timedelta(days=40), reference) == (
        (reference - timedelta(days=40)).strftime("%-d %b %Y")
    )
    assert "—" in str(reltime(None))
    assert "2026-01-02" in str(reltime("2026-01-02T03:04:05Z"))


def test_cron_in_words():
    assert cron_human("0 9 * * 1-5") == "At 09:00 AM, Monday through Friday"
    assert cron_human("@hourly") == "Every hour"
    assert cron_human(None) == "Not scheduled"
    assert cron_human("nonsense") == "Invalid schedule"


def test_nav_section_matches_the_path_and_what_is_below_it():
    assert nav_section("/dags", "/dags")
    assert nav_section("/dags/abc", "/dags")
    assert not nav_section("/dagsx", "/dags")
    assert not nav_section("/dags", "")


def test_page_window_elides_far_pages():
    paginator = Paginator(range(400), 10)
    assert page_window(paginator, 20) == [1, None, 18, 19, 20, 21, 22, None, 40]


def test_status_badge_has_colour_icon_and_text_and_escapes_unknown_values():
    html = Template("{% load ui %}{% status_badge s %}").render(Context({"s": "failed"}))
    assert 'class="badge status-failed"' in html and "✕" in html and "Failed" in html
    html = Template("{% load ui %}{% status_badge s %}").render(Context({"s": "<b>x</b>"}))
    assert "<b>" not in html and "&lt;b&gt;" in html


def test_tabs_are_links_that_keep_the_other_query_parameters():
    request = RequestFactory().get("/dags/x", {"q": "a", "page": "3"})
    html = Template('{% load ui %}{% tabs "plan" "plan:Plan" "runs" %}').render(
        RequestContext(request)
    )
    assert 'href="?q=a&amp;tab=plan" aria-current="page">Plan</a>' in html
    assert 'href="?q=a&amp;tab=runs">Runs</a>' in html
