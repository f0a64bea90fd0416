"""The UI's template filters and tags (`{% load ui %}`): one format for each kind of value.

- `reltime`: "5 min ago" inside `<time datetime=… title=…>` with the absolute time as tooltip;
- `duration`: milliseconds as "850 ms", "4.2 s", "3 min 05 s", "2 h 03 min";
- `usd`: dollars with 4 to 6 decimals ("$0.0123", "$0.000042");
- `cron_human`: a cron expression in words;
- `status_badge`: a status with its colour, icon and text;
- `pretty_json`: indented JSON text (escaped by the template like any other text).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html

from config.cron import describe_cron

register = template.Library()

# Each status: an icon (decorative; the text is always shown) and its label.
STATUSES: dict[str, tuple[str, str]] = {
    "pending": ("○", "Pending"),
    "running": ("◔", "Running"),
    "waiting": ("⏸", "Waiting"),
    "completed": ("✓", "Completed"),
    "failed": ("✕", "Failed"),
    "suspended": ("‖", "Suspended"),
    "partial": ("◑", "Partial"),
    "cancelled": ("⊘", "Cancelled"),
}


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return parse_datetime(value)
    return None


def relative_words(moment: datetime, reference: datetime | None = None) -> str:
    """ "just now", "5 min ago", "in 3 h", "2 d ago"; a date after a week."""
    reference = reference or timezone.now()
    seconds = (reference - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        return "just now" if not future else "in a moment"
    for limit, size, unit in ((3600, 60, "min"), (86400, 3600, "h"), (7 * 86400, 86400, "d")):
        if seconds < limit:
            amount = max(1, round(seconds / size))
            return f"in {amount} {unit}" if future else f"{amount} {unit} ago"
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    return local.strftime("%-d %b %Y")


def absolute_text(moment: datetime) -> str:
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    return local.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


@register.filter(is_safe=True)
def reltime(value: Any) -> str:
    moment = _as_datetime(value)
    if moment is None:
        return format_html('<span class="muted">{}</span>', "—")
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.isoformat(),
        absolute_text(moment),
        relative_words(moment),
    )


@register.filter
def duration(value: Any) -> str:
    """Milliseconds in one readable format; "—" for nothing."""
    if value is None or value == "":
        return "—"
    try:
        ms = float(value)
    except (TypeError, ValueError):
        return "—"
    if ms < 1000:
        return f"{round(ms)} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    total = round(seconds)
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {(total % 3600) // 60:02d} min"


@register.filter
def duration_between(start: Any, end: Any) -> str:
    """The duration from `start` to `end` (or to now while it runs)."""
    begin = _as_datetime(start)
    if begin is None:
        return "—"
    finish = _as_datetime(end) or timezone.now()
    return duration((finish - begin).total_seconds() * 1000)


@register.filter
def usd(value: Any) -> str:
    """US dollars with at least 4 decimals and up to 6 for small amounts ("$0.000042")."""
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return "—"
    if amount == 0:
        return "$0.0000"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount < Decimal("0.000001"):
        return f"{sign}<$0.000001"
    text = f"{amount:,.6f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{sign}${whole}.{decimals.ljust(4, '0')}"


@register.filter
def cron_human(value: Any) -> str:
    if not value:
        return "Not scheduled"
    return describe_cron(str(value))


@register.filter
def pretty_json(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    except (TypeError, ValueError):
        return str(value)


@register.filter
def nav_section(path: str, prefix: str) -> bool:
    """True when `path` is `prefix` or below it (a nav entry stays current on detail pages)."""
    if not prefix:
        return False
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


@register.filter
def percent(part: Any, whole: Any) -> int:
    try:
        return round(100 * float(part) / float(whole)) if float(whole) else 0
    except (TypeError, ValueError):
        return 0


@register.filter
def status_icon(status: Any) -> str:
    """The status's icon alone (for step timelines; the label goes beside it)."""
    return STATUSES.get(str(status or "").lower(), ("•", ""))[0]


@register.filter
def status_label(status: Any) -> str:
    key = str(status or "").lower()
    return STATUSES.get(key, ("", key.capitalize() or "Unknown"))[1]


@register.inclusion_tag("components/status_badge.html")
def status_badge(status: Any) -> dict[str, str]:
    key = str(status or "").lower()
    icon, label = STATUSES.get(key, ("•", key.capitalize() or "Unknown"))
    return {"status": key, "icon": icon, "label": label}


@register.filter
def page_window(paginator: Any, number: int) -> list[int | None]:
    """Page numbers around the current one, with None for the gaps ("1 … 4 5 6 … 20")."""
    return [
        page if isinstance(page, int) else None
        for page in paginator.get_elided_page_range(number, on_each_side=2, on_ends=1)
    ]


@register.inclusion_tag("components/tabs.html", takes_context=True)
def tabs(context: template.Context, current: str, *names: str) -> dict[str, Any]:
    """Tabs as links (`?tab=name`), so each tab has its own URL; names as "key:Label"."""
    items = []
    for name in names:
        key, _, label = name.partition(":")
        items.append({"key": key, "label": label or key.capitalize(), "current": key == current})
    return {"items": items, "request": context.get("request")}
