"""fetchPage (HTML and PDF to text) and fetchURLs (many at once), against a local server."""

from __future__ import annotations

import threading
import time

import pytest

from tests.fakes.http import Reply
from tools.base import ToolContext, ToolError
from tools.services import tool_run
from tools.tests.pdf import make_pdf

ARTICLE = """<!doctype html>
<html><head><title>  Tidal  Energy &amp; You </title>
<style>body { color: red }</style><script>var tracking = "SCRIPT-MARKER";</script></head>
<body>
<nav><a href="/">Home</a> <a href="/about">NAV-MARKER</a></nav>
<header>Site header</header>
<article>
<h1>How tidal power works</h1>
<p>Tidal power converts the energy of the rising and falling sea into electricity.
Barrages and underwater turbines are the two main designs used around the world today.</p>
<p>The first large tidal power station opened in France in 1966 and still runs &amp; produces
about 500 GWh a year, enough for a small city.</p>
</article>
<footer>FOOTER-MARKER copyright</footer>
</body></html>"""


def html(body: str, content_type: str = "text/html; charset=utf-8") -> Reply:
    return Reply(200, body.encode("utf-8"), {"Content-Type": content_type})


def test_html_page_becomes_readable_text_and_title(tool_settings, http_server):
    http_server.route("GET", "/article", html(ARTICLE))

    result = tool_run(name="fetchPage", params={"url": http_server.url("/article")}, timeout=20)

    assert result["title"] == "Tidal Energy & You"
    assert result["contentType"] == "text/html"
    assert "Tidal power converts the energy" in result["content"]
    assert "still runs & produces" in result["content"]
    for marker in ("SCRIPT-MARKER", "NAV-MARKER", "FOOTER-MARKER", "color: red", "<p>"):
        assert marker not in result["content"]
    assert result["contentLength"] == len(result["content"])
    assert result["truncated"] is False
    request = http_server.requests[0]
    assert "AsyncAgent" in request.headers["User-Agent"]


def test_max_length_truncates(tool_settings, http_server):
    http_server.route("GET", "/article", html(ARTICLE))

    result = tool_run(
        name="fetchPage", params={"url": http_server.url("/article"), "maxLength": 100}, timeout=20
    )

    assert len(result["content"]) == 100
    assert result["contentLength"] > 100
    assert result["truncated"] is True


def test_small_page_without_article_still_gives_text(tool_settings, http_server):
    http_server.route(
        "GET", "/tiny", html("<html><body><div>Only <b>this</b> line.</div></body></html>")
    )

    result = tool_run(name="fetchPage", params={"url": http_server.url("/tiny")}, timeout=20)

    assert result["title"] == "Untitled"
    assert "Only this line." in result["content"]


def test_pdf_becomes_text(tool_settings, http_server):
    document = make_pdf(
        [["Quarterly results", "Revenue grew by 12 percent."], ["Outlook: steady growth."]],
        title="Q3 Report",
    )
    http_server.route(
        "GET", "/report.pdf", Reply(200, document, {"Content-Type": "application/pdf"})
    )

    result = tool_run(name="fetchPage", params={"url": http_server.url("/report.pdf")}, timeout=20)

    assert result["contentType"] == "application/pdf"
    assert result["title"] == "Q3 Report"
    assert "Revenue grew by 12 percent." in result["content"]
    assert "Outlook: steady growth." in result["content"]
    # Downloaded once (a second, unguarded fetch would bypass the network guard).
    assert len(http_server.requests) == 1


def test_pdf_without_content_type_is_recognised(tool_settings, http_server):
    document = make_pdf([["Sniffed document"]])
    http_server.route(
        "GET", "/file", Reply(200, document, {"Content-Type": "application/octet-stream"})
    )

    result = tool_run(name="fetchPage", params={"url": http_server.url("/file")}, timeout=20)

    assert result["contentType"] == "application/pdf"
    assert result["title"] == "Untitled"
    assert "Sniffed document" in result["content"]


def test_broken_pdf_is_a_clear_error(tool_settings, http_server):
    http_server.route(
        "GET", "/bad.pdf", Reply(200, b"%PDF-1.4 garbage", {"Content-Type": "application/pdf"})
    )

    with pytest.raises(ToolError, match="Could not read the PDF"):
        tool_run(name="fetchPage", params={"url": http_server.url("/bad.pdf")}, timeout=20)


@pytest.mark.parametrize(
    "content_type", ["application/json", "image/png", "text/csv", "application/zip"]
)
def test_other_content_types_are_refused(tool_settings, http_server, content_type):
    http_server.route("GET", "/data", Reply(200, b'{"a": 1}', {"Content-Type": content_type}))

    with pytest.raises(ToolError, match=f"Unsupported content type '{content_type}'"):
        tool_run(name="fetchPage", params={"url": http_server.url("/data")}, timeout=20)


def test_http_errors_are_reported(tool_settings, http_server):
    http_server.route("GET", "/missing", Reply(404, b"nope", {"Content-Type": "text/html"}))

    with pytest.raises(ToolError, match="HTTP 404 Not Found"):
        tool_run(name="fetchPage", params={"url": http_server.url("/missing")}, timeout=20)


def test_gzip_responses_are_decoded(tool_settings, http_server):
    import gzip

    body = gzip.compress(ARTICLE.encode())
    http_server.route(
        "GET",
        "/gz",
        Reply(200, body, {"Content-Type": "text/html", "Content-Encoding": "gzip"}),
    )

    result = tool_run(name="fetchPage", params={"url": http_server.url("/gz")}, timeout=20)

    assert "Tidal power converts" in result["content"]


def test_progress_is_reported_before_and_after(tool_settings, http_server):
    http_server.route("GET", "/article", html(ARTICLE))
    seen: list[tuple[str, bool, str]] = []

    def progress(message: str, *, completed: bool = False) -> None:
        seen.append((message, completed, threading.current_thread().name))

    url = http_server.url("/article")
    tool_run(
        name="fetchPage", params={"url": url}, context=ToolContext(progress=progress), timeout=20
    )

    first_message, first_completed, _ = seen[0]
    assert (first_message, first_completed) == (f"Fetching {url}", False)
    last_message, last_completed, _ = seen[-1]
    assert last_completed is True
    assert url in last_message and "characters" in last_message
    # Listeners run on the caller's thread (they may use its database connection).
    assert {thread for _, _, thread in seen} == {threading.current_thread().name}


# --- fetchURLs ----------------------------------------------------------------------------------


def test_fetch_urls_takes_strings_and_objects_and_reports_failures(tool_settings, http_server):
    http_server.route(
        "GET", "/a", html("<html><title>A</title><body><p>Page A text.</p></body></html>")
    )
    http_server.route(
        "GET", "/b", html("<html><title>B</title><body><p>Page B text.</p></body></html>")
    )
    http_server.route(
        "GET", "/c", html("<html><title>C</title><body><p>Page C text.</p></body></html>")
    )
    http_server.route("GET", "/gone", Reply(410, b"", {"Content-Type": "text/html"}))
    params = {
        "urls": [
            http_server.url("/a"),
            {"title": "search hit", "link": http_server.url("/b")},
            {"URL": http_server.url("/c"), "url": "not a url"},
            {"href": http_server.url("/gone")},
            "http://169.254.169.254/latest/meta-data/",
            http_server.url("/a"),  # duplicate: fetched once
            {"name": "no url here"},
            "report.md",
        ]
    }

    result = tool_run(name="fetchURLs", params=params, timeout=30)

    by_url = {entry["url"]: entry for entry in result}
    assert by_url[http_server.url("/a")]["title"] == "A"
    assert by_url[http_server.url("/b")]["content"] == "Page B text."
    assert by_url[http_server.url("/c")]["title"] == "C"
    assert "HTTP 410" in by_url[http_server.url("/gone")]["error"]
    assert "Refusing" in by_url["http://169.254.169.254/latest/meta-data/"]["error"]
    assert by_url["report.md"]["error"] == "Not an http(s) URL."
    assert len(result) == 6
    assert sorted(request.path for request in http_server.requests) == ["/a", "/b", "/c", "/gone"]


def test_fetch_urls_runs_concurrently_within_the_limit(tool_settings, http_server):
    tool_settings.TOOLS_FETCH_CONCURRENCY = 3
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def slow_page(request) -> Reply:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1
        return html(f"<html><title>{request.path}</title><body><p>x</p></body></html>")

    http_server.route("GET", "*", slow_page)
    urls = [http_server.url(f"/p{index}") for index in range(9)]

    result = tool_run(name="fetchURLs", params={"urls": urls}, timeout=30)

    assert [entry["title"] for entry in result] == [f"/p{index}" for index in range(9)]
    assert state["peak"] == 3


def test_fetch_urls_caps_the_number_of_urls(tool_settings, http_server):
    tool_settings.TOOLS_FETCH_MAX_URLS = 2
    http_server.route("GET", "*", html("<html><title>t</title><body><p>x</p></body></html>"))
    urls = [http_server.url(f"/p{index}") for index in range(3)]

    result = tool_run(name="fetchURLs", params={"urls": urls}, timeout=30)

    assert [entry.get("error", "") for entry in result][:2] == ["", ""]
    assert "at most 2 URLs" in result[2]["error"]
    assert len(http_server.requests) == 2


def test_fetch_urls_with_nothing_usable_returns_an_empty_list(tool_settings):
    assert tool_run(name="fetchURLs", params={"urls": [{"a": 1}]}, timeout=10) == []
