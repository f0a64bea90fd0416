"""Search, filter, sort and paging for the UI's list pages, read from the query string.

Every list page offers the same controls; this module turns the request's query into checked
values (an unknown value falls back to the default instead of failing) and the template
`components/list_filters.html` draws them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

SEARCH_LIMIT = 200
PAGE_SIZE = 25


@dataclass(frozen=True)
class ChoiceFilter:
    """A select box: `name` in the query string, its label and its (value, label) choices."""

    name: str
    label: str
    choices: Sequence[tuple[str, str]]
    any_label: str = "Any"

    def clean(self, raw: str) -> str:
        return raw if raw in {value for value, _ in self.choices} else ""


@dataclass(frozen=True)
class ListQuery:
    """The checked query of one list page, ready for a selector and for the template."""

    text: str
    sort: str
    values: dict[str, str]
    controls: dict[str, Any] = field(repr=False)

    @property
    def filtered(self) -> bool:
        return bool(self.text or any(self.values.values()))


def list_query(
    request: HttpRequest,
    *,
    label: str,
    sorts: Mapping[str, str],
    default_sort: str,
    filters: Sequence[ChoiceFilter] = (),
    search_placeholder: str = "",
    clear_url: str,
) -> ListQuery:
    query = request.GET
    sort = query.get("sort", default_sort)
    if sort not in sorts:
        sort = default_sort
    text = query.get("q", "").strip()[:SEARCH_LIMIT]
    values = {item.name: item.clean(query.get(item.name, "")) for item in filters}
    selects = [{"filter": item, "selected": values[item.name]} for item in filters]
    controls = {
        "label": label,
        "q": text,
        "search_placeholder": search_placeholder,
        "selects": selects,
        "sorts": dict(sorts),
        "sort": sort,
        "filtered": bool(text or any(values.values())),
        "clear_url": clear_url,
    }
    return ListQuery(text=text, sort=sort, values=values, controls=controls)


def paginate(request: HttpRequest, rows: Any, per_page: int = PAGE_SIZE) -> Page:
    """The requested page of `rows`; a page number out of range gives the nearest page."""
    return Paginator(rows, per_page).get_page(request.GET.get("page"))
