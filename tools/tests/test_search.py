"""webSearch with its two backends, served by a local server shaped like each service."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.fakes.http import RecordedRequest, Reply
from tools.base import ToolError
from tools.search import split_queries
from tools.services import tool_run


def ddg_result(title: str, target: str, snippet: str, *, ad: bool = False) -> str:
    css = "result results_links results_links_deep web-result" + (" result--ad" if ad else "")
    href = f"//duckduckgo.com/l/?uddg={quote(target, safe='')}&amp;rut=abc"
    return f"""
    <div class="{css}">
      <div class="links_main links_deep result__body">
        <h2 class="result__title"><a rel="nofollow" class="result__a" href="{href}">{title}</a></h2>
        <a class="result__snippet" href="{href}">{snippet}</a>
      </div>
    </div>"""


def ddg_page(results: list[str]) -> Reply:
    body = (
        "<!DOCTYPE html><html><head><title>DuckDuckGo</title></head><body>"
        '<div id="links" class="results">' + "".join(results) + "</div></body></html>"
    )
    return Reply(200, body.encode(), {"Content-Type": "text/html; charset=UTF-8"})


def query_of(request: RecordedRequest) -> str:
    return parse_qs(urlsplit(request.path).query)["q"][0]


@pytest.fixture
def duckduckgo(tool_settings, http_server):
    tool_settings.TOOLS_ALLOWED_HOSTS = []  # the configured backend host is trusted by itself
    tool_settings.WEB_SEARCH_BACKEND = "duckduckgo"
    tool_settings.WEB_SEARCH_BASE_URL = http_server.base_url
    return http_server


@pytest.fixture
def searxng(tool_settings, http_server):
    tool_settings.TOOLS_ALLOWED_HOSTS = []
    tool_settings.WEB_SEARCH_BACKEND = "searxng"
    tool_settings.WEB_SEARCH_BASE_URL = ""
    tool_settings.SEARXNG_BASE_URL = http_server.base_url + "/"
    return http_server


def test_split_queries():
    text = (
        '1. "tidal power France"\n- wind energy costs\n\n* • solar\n'
        '  2) nuclear "SMR designs" 2026\n'
    )

    assert split_queries(text) == [
        "tidal power France",
        "wind energy costs",
        "• solar",
        "SMR designs",
    ]


def test_duckduckgo_results(duckduckgo):
    def answer(request: RecordedRequest) -> Reply:
        query = query_of(request)
        return ddg_page(
            [
                ddg_result("Sponsored", "https://ads.example/buy", "ad", ad=True),
                ddg_result(
                    f"{query} one", f"https://one.example/?q={query}&x=1", "First &amp; best"
                ),
                ddg_result(f"{query} two", "https://two.example/page", "Second"),
                ddg_result(f"{query} three", "https://three.example/", "Third"),
            ]
        )

    duckduckgo.route("GET", "/html/", answer)

    result = tool_run(
        name="webSearch",
        params={"query": '1. "tidal power"\n2. wind farms', "limit": 2},
        timeout=20,
    )

    assert result == [
        {
            "title": "tidal power one",
            "url": "https://one.example/?q=tidal power&x=1",
            "snippet": "First & best",
            "query": "tidal power",
        },
        {
            "title": "tidal power two",
            "url": "https://two.example/page",
            "snippet": "Second",
            "query": "tidal power",
        },
        {
            "title": "wind farms one",
            "url": "https://one.example/?q=wind farms&x=1",
            "snippet": "First & best",
            "query": "wind farms",
        },
        {
            "title": "wind farms two",
            "url": "https://two.example/page",
            "snippet": "Second",
            "query": "wind farms",
        },
    ]
    assert [query_of(request) for request in duckduckgo.requests] == ["tidal power", "wind farms"]


def test_duckduckgo_no_results_is_an_empty_list(duckduckgo):
    page = (
        "<html><body><div class='results'><div class='no-results'>No results.</div>"
        "</div></body></html>"
    )
    duckduckgo.route("GET", "/html/", Reply(200, page.encode(), {"Content-Type": "text/html"}))

    assert tool_run(name="webSearch", params={"query": "zzqx"}, timeout=20) == []


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(500, b"oops", {"Content-Type": "text/html"}), "HTTP 500"),
        (Reply(202, b"<html>challenge</html>", {"Content-Type": "text/html"}), "rate-limiting"),
        (
            Reply(
                200,
                b"<html><body><form id='challenge'></form></body></html>",
                {"Content-Type": "text/html"},
            ),
            "without results",
        ),
    ],
)
def test_duckduckgo_failure_is_an_error_not_fake_results(duckduckgo, reply, message):
    duckduckgo.route("GET", "/html/", reply)

    with pytest.raises(ToolError, match=message):
        tool_run(name="webSearch", params={"query": "anything"}, timeout=20)


def test_one_failing_query_does_not_hide_the_others(duckduckgo):
    def answer(request: RecordedRequest) -> Reply:
        if query_of(request) == "bad":
            return Reply(503, b"", {"Content-Type": "text/html"})
        return ddg_page([ddg_result("Good", "https://good.example/", "fine")])

    duckduckgo.route("GET", "/html/", answer)

    result = tool_run(name="webSearch", params={"query": "good\nbad"}, timeout=20)

    assert result[0] == {
        "title": "Good",
        "url": "https://good.example/",
        "snippet": "fine",
        "query": "good",
    }
    assert result[1]["query"] == "bad" and "HTTP 503" in result[1]["error"]


def test_searxng_results(searxng):
    def answer(request: RecordedRequest) -> Reply:
        params = parse_qs(urlsplit(request.path).query)
        assert params["format"] == ["json"]
        query = params["q"][0]
        return Reply(
            200,
            {
                "query": query,
                "results": [
                    {
                        "url": f"https://a.example/{index}",
                        "title": f"{query} {index}",
                        "content": f"snippet {index}",
                        "engine": "x",
                    }
                    for index in range(5)
                ]
                + [{"title": "no url"}],
            },
        )

    searxng.route("GET", "/search", answer)

    result = tool_run(name="webSearch", params={"query": "ocean energy", "limit": 3}, timeout=20)

    assert result == [
        {
            "title": f"ocean energy {index}",
            "url": f"https://a.example/{index}",
            "snippet": f"snippet {index}",
            "query": "ocean energy",
        }
        for index in range(3)
    ]


def test_searxng_without_json_format_is_a_clear_error(searxng):
    searxng.route("GET", "/search", Reply(403, b"Forbidden", {"Content-Type": "text/html"}))

    with pytest.raises(ToolError, match="enable the 'json' format"):
        tool_run(name="webSearch", params={"query": "x"}, timeout=20)


def test_searxng_needs_a_base_url(searxng, tool_settings):
    tool_settings.SEARXNG_BASE_URL = ""

    with pytest.raises(ToolError, match="SEARXNG_BASE_URL is not set"):
        tool_run(name="webSearch", params={"query": "x"}, timeout=20)


def test_unknown_backend(tool_settings):
    tool_settings.WEB_SEARCH_BACKEND = "altavista"

    with pytest.raises(ToolError, match="Unknown WEB_SEARCH_BACKEND 'altavista'"):
        tool_run(name="webSearch", params={"query": "x"}, timeout=20)


def test_search_results_do_not_unlock_other_private_hosts(duckduckgo):
    """Trusting the configured backend host does not extend to redirects elsewhere."""
    duckduckgo.route(
        "GET", "/html/", Reply(302, b"", {"Location": "http://169.254.169.254/latest/"})
    )

    with pytest.raises(ToolError, match="refused"):
        tool_run(name="webSearch", params={"query": "x"}, timeout=20)
