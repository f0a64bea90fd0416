"""fetchPage and fetchURLs: read web pages and PDFs as text, through the network guard."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

import lxml.html
import trafilatura
from django.conf import settings
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from tools.base import DependencyInput, References, ToolContext, ToolError
from tools.netguard import HttpResult, guarded_request
from tools.schemas import FetchPageParams, FetchUrlsParams, check_http_url

if TYPE_CHECKING:
    from trafilatura.settings import Document

logger = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
ACCEPT = "text/html,application/xhtml+xml;q=0.9,application/pdf;q=0.8"
URL_KEYS = ("url", "URL", "link", "href", "uri")
FETCH_URLS_MAX_LENGTH = 10000
UNTITLED = "Untitled"


# --- fetchPage ------------------------------------------------------------------------------


def fetch_page(params: FetchPageParams, context: ToolContext) -> dict[str, Any]:
    return read_page(url=params.url, max_length=params.maxLength, context=context)


def read_page(*, url: str, max_length: int, context: ToolContext) -> dict[str, Any]:
    context.report(f"Fetching {url}")
    result = guarded_request(
        "GET",
        url,
        headers={"Accept": ACCEPT},
        timeout=settings.TOOLS_FETCH_TIMEOUT_SECONDS,
        cancel=context.cancel,
    )
    if not result.ok:
        raise ToolError(f"HTTP {result.status} {result.reason} from {url}".rstrip())
    kind = _content_kind(result)
    context.cancel.check()
    if kind == "application/pdf":
        title, text = _pdf_text(result.body, context)
    else:
        title, text = _html_text(result)
    context.cancel.check()
    truncated = len(text) > max_length
    content = text[:max_length]
    context.report(f"Fetched {len(text)} characters from {url}", completed=True)
    return {
        "url": url,
        "finalUrl": result.url,
        "title": title,
        "content": content,
        "contentLength": len(text),
        "truncated": truncated,
        "contentType": kind,
    }


def _content_kind(result: HttpResult) -> str:
    declared = result.content_type
    if declared in HTML_TYPES:
        return "text/html"
    if declared in PDF_TYPES:
        return "application/pdf"
    if not declared or declared in ("application/octet-stream", "binary/octet-stream"):
        # Servers that do not say: trust the bytes.
        head = result.body[:1024].lstrip()
        if head.startswith(b"%PDF-"):
            return "application/pdf"
        if re.match(rb"(?i)<!doctype html|<html", head):
            return "text/html"
    raise ToolError(
        f"Unsupported content type '{declared or 'unknown'}' at {result.url}: only HTML pages "
        "and PDF documents can be read."
    )


def _html_text(result: HttpResult) -> tuple[str, str]:
    markup: str | bytes = result.text() if result.charset else result.body
    title = _html_title(markup)
    text = ""
    try:
        # A Document (a dict only with `as_dict=True`), or None.
        document = cast(
            "Document | None",
            trafilatura.bare_extraction(
                markup,
                url=result.url,
                favor_recall=True,
                include_comments=False,
                include_tables=True,
                with_metadata=True,
            ),
        )
    except Exception:  # the extractor is best effort; fall back to plain text below
        logger.info("readable-text extraction failed for %s", result.url, exc_info=True)
        document = None
    if document is not None:
        text = (document.text or "").strip()
        if title == UNTITLED and document.title:
            title = document.title.strip() or UNTITLED
    if not text:
        text = _plain_text(markup)
    return title, text


def _html_title(markup: str | bytes) -> str:
    try:
        tree = lxml.html.document_fromstring(markup)
    except (ValueError, lxml.etree.ParserError):
        return UNTITLED
    title = tree.findtext(".//title") or ""
    title = " ".join(title.split())
    return title or UNTITLED


def _plain_text(markup: str | bytes) -> str:
    """All visible text, one trimmed line per block, for pages the extractor gives up on."""
    try:
        tree = lxml.html.document_fromstring(markup)
    except (ValueError, lxml.etree.ParserError):
        return ""
    for element in tree.xpath("//script|//style|//noscript|//template|//nav|//header|//footer"):
        element.drop_tree()
    body = tree.find("body")
    text = (body if body is not None else tree).text_content()
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _pdf_text(data: bytes, context: ToolContext) -> tuple[str, str]:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")
        pages: list[str] = []
        for page in reader.pages:
            context.cancel.check()
            pages.append((page.extract_text() or "").strip())
        title = ""
        metadata = reader.metadata
        if metadata is not None and metadata.title:
            title = str(metadata.title).strip()
    except ToolError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, NotImplementedError) as error:
        raise ToolError(f"Could not read the PDF document: {error}") from None
    return title or UNTITLED, "\n\n".join(page for page in pages if page)


# --- fetchURLs ------------------------------------------------------------------------------


def fetch_urls(params: FetchUrlsParams, context: ToolContext) -> list[dict[str, Any]]:
    urls, rejected = collect_urls(params.urls)
    limit = settings.TOOLS_FETCH_MAX_URLS
    entries: list[dict[str, Any] | None] = [None] * len(urls)
    for index, url in enumerate(urls[limit:], start=limit):
        entries[index] = {"url": url, "error": f"Skipped: at most {limit} URLs are read per call."}
    to_fetch = list(enumerate(urls[:limit]))

    def fetch_one(item: tuple[int, str]) -> None:
        index, url = item
        try:
            entries[index] = read_page(url=url, max_length=FETCH_URLS_MAX_LENGTH, context=context)
        except ToolError as error:
            context.cancel.check()
            logger.debug("fetchURLs: %s failed: %s", url, error.message)
            entries[index] = {"url": url, "error": error.message}

    if to_fetch:
        workers = max(1, min(settings.TOOLS_FETCH_CONCURRENCY, len(to_fetch)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetchURLs") as pool:
            for future in [pool.submit(fetch_one, item) for item in to_fetch]:
                future.result()
    context.cancel.check()
    return [entry for entry in entries if entry is not None] + rejected


def collect_urls(items: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The distinct http(s) URLs in `items` (strings or objects), and the strings that are not."""
    urls: list[str] = []
    rejected: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            url = _as_url(item)
            if url is None:
                rejected.append({"url": item[:500], "error": "Not an http(s) URL."})
                continue
        elif isinstance(item, dict):
            url = next(
                (found for key in URL_KEYS if (found := _as_url(item.get(key))) is not None), None
            )
            if url is None:
                logger.info("fetchURLs: an object without a usable URL field was skipped")
                continue
        else:
            continue
        if url not in urls:
            urls.append(url)
    return urls, rejected


def _as_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return check_http_url(value)
    except ValueError:
        return None


# --- fetchURLs in a DAG: URLs from the tasks it depends on --------------------------------------
# http(s) URLs, or bare `www.` hosts; deliberately not file names such as `report.md`.
URL_PATTERN = re.compile(r"""(?:https?://|www\.)[^\s<>"'`)\]}]+""", re.IGNORECASE)


def urls_in(result: Any) -> list[str]:
    """URLs found in a dependency result: `url`-like fields of objects, or links in text."""
    found: list[str] = []
    if isinstance(result, Mapping):
        for key in URL_KEYS:
            value = result.get(key)
            if isinstance(value, str) and value.strip():
                found.append(value.strip())
        for value in result.values():
            if isinstance(value, list | dict):
                found.extend(urls_in(value))
    elif isinstance(result, list):
        for item in result:
            found.extend(urls_in(item))
    elif isinstance(result, str):
        for match in URL_PATTERN.findall(result):
            url = match.rstrip(".,;:!?")
            found.append(url if url.lower().startswith("http") else f"https://{url}")
    return found


def urls_with_dependencies(
    params: dict[str, Any], dependency_results: list[Any], references: References
) -> dict[str, Any]:
    """The node's own URLs (references filled in, URLs picked out of text) followed by every URL
    in its dependencies' results, each once; objects with a URL field are kept as objects."""
    own = params.get("urls")
    own_list = own if isinstance(own, list) else ([own] if own else [])
    own_list = references.substitute(own_list)
    gathered: list[Any] = []
    for item in own_list:
        if isinstance(item, str) and item.strip() and not any(c.isspace() for c in item.strip()):
            gathered.append(item.strip())  # a URL as given (the tool validates it)
        elif isinstance(item, str):
            gathered.extend(urls_in(item))  # text, e.g. a substituted result
        else:
            gathered.append(item)  # an object with a url-like key
    for result in dependency_results:
        gathered.extend(urls_in(result))
    strings = [item for item in gathered if isinstance(item, str)]
    objects = [item for item in gathered if not isinstance(item, str)]
    return {**params, "urls": list(dict.fromkeys(strings)) + objects}


URLS_FROM_DEPENDENCIES = DependencyInput(
    param="urls",
    missing_message="Give URLs or depend on a task that finds them",
    given=lambda params: bool(params.get("urls")),
    resolve=urls_with_dependencies,
)
