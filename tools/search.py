"""webSearch: web search through a backend chosen by settings.

Backends: `duckduckgo` (its HTML results page, no key needed) and `searxng` (a SearXNG
instance's JSON API). Each has a configurable base URL; the configured host is trusted by the
network guard since an operator, not a model, chose it. A failing backend is an error: this
tool never makes up results.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import lxml.html
from django.conf import settings

from tools.base import ToolContext, ToolError
from tools.netguard import HttpResult, guarded_request
from tools.schemas import WebSearchParams

logger = logging.getLogger(__name__)

DUCKDUCKGO_BASE_URL = "https://html.duckduckgo.com"
MAX_QUERIES = 10
_LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[*\-•+])\s*")
_QUOTED = re.compile(r"[\"“”]([^\"“”]+)[\"“”]")

SearchResult = dict[str, str]
Backend = Callable[[str, int, ToolContext], list[SearchResult]]


class SearchBackendError(ToolError):
    pass


def split_queries(text: str) -> list[str]:
    """One search per non-empty line: list markers removed, a quoted phrase used on its own."""
    queries: list[str] = []
    for line in text.splitlines():
        line = _LIST_MARKER.sub("", line, count=1).strip()
        quoted = _QUOTED.search(line)
        if quoted and quoted.group(1).strip():
            line = quoted.group(1).strip()
        if line and line not in queries:
            queries.append(line)
    return queries


def web_search(params: WebSearchParams, context: ToolContext) -> list[dict[str, Any]]:
    queries = split_queries(params.query)
    if not queries:
        raise ToolError("The search query is empty.")
    if len(queries) > MAX_QUERIES:
        logger.info(
            "webSearch: %s queries given, searching the first %s", len(queries), MAX_QUERIES
        )
        queries = queries[:MAX_QUERIES]
    backend_name, backend = configured_backend()
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for query in queries:
        context.cancel.check()
        context.report(f"Searching ({backend_name}): {query}")
        try:
            found = backend(query, params.limit, context)
        except ToolError as error:
            context.cancel.check()
            logger.warning("webSearch (%s) failed for one query: %s", backend_name, error.message)
            failures.append(error.message)
            results.append({"query": query, "error": error.message})
            continue
        results.extend({**item, "query": query} for item in found[: params.limit])
    if len(failures) == len(queries):
        raise SearchBackendError(failures[0] if len(failures) == 1 else "; ".join(failures))
    context.report(f"Search finished: {len(results) - len(failures)} results", completed=True)
    return results


def configured_backend() -> tuple[str, Backend]:
    name = (settings.WEB_SEARCH_BACKEND or "duckduckgo").strip().lower()
    if name == "duckduckgo":
        return name, duckduckgo_search
    if name == "searxng":
        return name, searxng_search
    raise SearchBackendError(f"Unknown WEB_SEARCH_BACKEND '{name}': use 'duckduckgo' or 'searxng'.")


def _get(url: str, context: ToolContext, *, accept: str, trusted_base: str) -> HttpResult:
    host = urlsplit(trusted_base).hostname or ""
    return guarded_request(
        "GET",
        url,
        headers={"Accept": accept, "Accept-Language": "en-US,en;q=0.8"},
        timeout=settings.WEB_SEARCH_TIMEOUT_SECONDS,
        cancel=context.cancel,
        extra_allowed_hosts=[host] if host else [],
    )


# --- DuckDuckGo HTML --------------------------------------------------------------------------


def duckduckgo_search(query: str, limit: int, context: ToolContext) -> list[SearchResult]:
    base = (settings.WEB_SEARCH_BASE_URL or DUCKDUCKGO_BASE_URL).rstrip("/")
    url = f"{base}/html/?{urlencode({'q': query})}"
    result = _get(url, context, accept="text/html", trusted_base=base)
    if result.status != 200:
        # DuckDuckGo answers 202 with a challenge page when it rate-limits a client.
        raise SearchBackendError(
            f"DuckDuckGo search failed (HTTP {result.status} {result.reason}) for '{query}'; "
            "it may be rate-limiting this server. Try again later or set "
            "WEB_SEARCH_BACKEND=searxng."
        )
    return parse_duckduckgo_html(result.text(), limit=limit, base_url=base, query=query)


def parse_duckduckgo_html(
    html: str, *, limit: int, base_url: str = DUCKDUCKGO_BASE_URL, query: str = ""
) -> list[SearchResult]:
    try:
        tree = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        raise SearchBackendError("DuckDuckGo returned an empty or unreadable page.") from None
    blocks = tree.xpath('//*[contains(concat(" ", normalize-space(@class), " "), " result ")]')
    results: list[SearchResult] = []
    for block in blocks:
        classes = (block.get("class") or "").split()
        if "result--ad" in classes:
            continue
        links = block.xpath(
            './/a[contains(concat(" ", normalize-space(@class), " "), " result__a ")]'
        )
        if not links:
            continue
        link = links[0]
        target = _unwrap_duckduckgo_link(link.get("href") or "", base_url)
        if not target:
            continue
        snippets = block.xpath(
            './/*[contains(concat(" ", normalize-space(@class), " "), " result__snippet ")]'
        )
        results.append(
            {
                "title": " ".join(link.text_content().split()),
                "url": target,
                "snippet": " ".join(snippets[0].text_content().split()) if snippets else "",
            }
        )
        if len(results) >= limit:
            break
    if not results and not tree.xpath('//*[contains(@class, "no-results")]'):
        raise SearchBackendError(
            f"DuckDuckGo returned a page without results for '{query}' (probably a bot "
            "check). Try again later or set WEB_SEARCH_BACKEND=searxng."
        )
    return results


def _unwrap_duckduckgo_link(href: str, base_url: str) -> str | None:
    """DuckDuckGo wraps result links as `/l/?uddg=<encoded target>`; return the target."""
    absolute = urljoin(base_url + "/", href.strip())
    parts = urlsplit(absolute)
    if parts.path.rstrip("/").endswith("/l") or "uddg=" in parts.query:
        targets = parse_qs(parts.query).get("uddg")
        if not targets:
            return None
        absolute = targets[0]
    if urlsplit(absolute).scheme not in ("http", "https"):
        return None
    return absolute


# --- SearXNG JSON ---------------------------------------------------------------------------


def searxng_search(query: str, limit: int, context: ToolContext) -> list[SearchResult]:
    base = (settings.WEB_SEARCH_BASE_URL or settings.SEARXNG_BASE_URL).rstrip("/")
    if not base:
        raise SearchBackendError("WEB_SEARCH_BACKEND is 'searxng' but SEARXNG_BASE_URL is not set.")
    url = f"{base}/search?{urlencode({'q': query, 'format': 'json'})}"
    result = _get(url, context, accept="application/json", trusted_base=base)
    if result.status == 403:
        raise SearchBackendError(
            "SearXNG refused JSON output (HTTP 403): enable the 'json' format in the "
            "instance's search.formats setting."
        )
    if not result.ok:
        raise SearchBackendError(
            f"SearXNG search failed (HTTP {result.status} {result.reason}) for '{query}'."
        )
    try:
        data = json.loads(result.text())
    except ValueError:
        raise SearchBackendError("SearXNG returned a reply that is not JSON.") from None
    items = data.get("results") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise SearchBackendError("SearXNG returned JSON without a results list.")
    results: list[SearchResult] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            continue
        results.append(
            {
                "title": str(item.get("title") or "").strip(),
                "url": item["url"],
                "snippet": str(item.get("content") or "").strip(),
            }
        )
        if len(results) >= limit:
            break
    return results
