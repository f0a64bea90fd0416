"""Error pages in the site's layout (the project-wide `error.html` template), used by the
error handlers in config/views.py for paths that answer HTML."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.template import loader

logger = logging.getLogger(__name__)


ERROR_TITLES = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Forbidden", "You are not allowed to see or change this."),
    404: ("Page not found", "There is nothing here. It may have been deleted or moved."),
    500: ("Something went wrong", "The server failed to answer. It has been logged; try again."),
}


def error_page(request: HttpRequest, status: int, detail: str = "") -> HttpResponse:
    """An error page in the site's layout; plain text if even the template fails."""
    title, hint = ERROR_TITLES.get(status, ERROR_TITLES[500])
    try:
        body = loader.render_to_string(
            "error.html",
            {"status": status, "title": title, "hint": hint, "detail": detail},
            request=request,
        )
    except Exception:  # the error page must not fail in turn
        logger.exception("error page %s failed to render", status)
        return HttpResponse(f"{status} {title}", status=status, content_type="text/plain")
    return HttpResponse(body, status=status)


def page_csrf_failure(request: HttpRequest) -> HttpResponse:
    """A form sent without a valid CSRF token (an old tab, cleared cookies): say what to do.
    Paths that answer JSON get a JSON error from config.views.csrf_failure instead."""
    return error_page(
        request,
        403,
        "The form could not be accepted because its security token is missing or expired "
        "(for example after logging in again in another tab). Go back, reload the page and "
        "send it again.",
    )
