"""The artifacts pages: a browser of the artifacts folder and a page per file (rendered,
embedded or downloaded). They read through the artifacts selectors with the logged-in user as
viewer, so a user sees the files their executions and runs wrote and staff see every file."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET

from artifacts import selectors
from artifacts.serving import artifact_file_response, artifact_preview
from config.errors import DomainError
from ui.listing import list_query, paginate

PAGE_SIZE = 50


@require_GET
@login_required
def artifact_list_page(request: HttpRequest) -> HttpResponse:
    listing = list_query(
        request,
        label="artifacts",
        sorts=selectors.BROWSE_SORTS,
        default_sort="name",
        search_placeholder="Part of a file name or folder",
        clear_url=reverse("artifacts:list"),
    )
    browse = selectors.artifact_browse(viewer=request.user, text=listing.text, sort=listing.sort)
    page = paginate(request, browse.entries, PAGE_SIZE)
    context = {
        "page_obj": page,
        "files": selectors.artifact_details(entries=list(page.object_list)),
        "controls": listing.controls,
        "filtered": listing.filtered,
        "truncated": browse.truncated,
        "limit": selectors.BROWSE_LIMIT,
    }
    return render(request, "artifacts/list.html", context)


# The file itself may be embedded by the file's own page (a PDF in an <object>).
@xframe_options_sameorigin
@require_GET
@login_required
def artifact_page(request: HttpRequest, name: str) -> HttpResponse:
    """One file: its page, or with `?raw=1` the file itself inline (images, PDFs, text as
    plain text), or with `?download=1` as an attachment."""
    try:
        file, content = selectors.artifact_get(name=name, viewer=request.user)
    except DomainError as error:
        # A path outside the folder is refused the same way as a missing file.
        raise Http404(error.message) from None
    if request.GET.get("download") or request.GET.get("raw"):
        return artifact_file_response(
            name=file.name, content=content, download=bool(request.GET.get("download"))
        )
    context = {
        "file": file,
        "preview": artifact_preview(name=file.name, content=content),
        "raw_url": f"{reverse('artifacts:file', args=[file.name])}?raw=1",
    }
    return render(request, "artifacts/detail.html", context)
