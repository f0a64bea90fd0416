"""The task page: a prompt and files to a chosen agent, the answer as sanitized Markdown with
usage and cost, a conversation that continues, and each answer downloadable as Markdown.

It runs the same service as `POST /api/v1/task` with the same upload limits. The conversation
lives in the user's session (stored in the database, so every web process sees it): it is a
scratch pad that belongs to one browser sign-in and needs no clean-up job, and nothing else in
the system refers to it. Images are not kept in it (only their names); later turns send the
earlier turns as text.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import (
    MemoryFileUploadHandler,
    StopUpload,
    TemporaryFileUploadHandler,
)
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.timezone import now
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents import selectors
from agents.forms import TaskForm
from agents.llm.errors import LLMConfigurationError, LLMError
from agents.task.services import Attachment, attachment_from_upload, task_params, task_run
from agents.task.views import TaskUploadLimits
from config.api.exceptions import ApiError
from config.api.formatting import money
from config.errors import InvalidInput
from config.markdown import render_markdown

logger = logging.getLogger(__name__)

SESSION_KEY = "task_conversation"
MAX_TURNS = 20  # the oldest turns are dropped beyond this
TURN_CONTEXT_CHARS = 20_000  # what one earlier turn may add to the next call


class PageUploadLimits(TaskUploadLimits):
    """The API's upload limits, but a breach stops the upload quietly and is remembered, so
    the page can show the message beside the form with the fields sent before the files (the
    agent and the prompt) kept."""

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.refusal = ""

    def _refuse(self, error: ApiError) -> None:
        self.refusal = str(error.body.get("error", "The upload is too large."))
        raise StopUpload(connection_reset=False)

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        try:
            return super().handle_raw_input(input_data, META, content_length, boundary, encoding)
        except ApiError as error:
            # Fields still parse; the first file part stops the upload.
            self.refusal = str(error.body.get("error"))
            return None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        if self.refusal:
            raise StopUpload(connection_reset=False)
        try:
            super().new_file(*args, **kwargs)
        except ApiError as error:
            self._refuse(error)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        try:
            return super().receive_data_chunk(raw_data, start)
        except ApiError as error:
            self._refuse(error)
            raise  # not reached: _refuse raises


def upload_limits() -> dict[str, int]:
    return {
        "max_file": settings.TASK_MAX_FILE_BYTES,
        "max_request": settings.TASK_MAX_REQUEST_BYTES,
        "max_files": settings.TASK_MAX_FILES,
    }


# --- the conversation (in the session) -----------------------------------------------------------
def conversation_turns(request: HttpRequest) -> list[dict[str, Any]]:
    turns = request.session.get(SESSION_KEY)
    return turns if isinstance(turns, list) else []


def history_messages(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages_: list[dict[str, Any]] = []
    for turn in turns:
        messages_.append({"role": "user", "content": turn.get("context", "")})
        messages_.append({"role": "assistant", "content": turn.get("answer", "")})
    return messages_


def turn_context(prompt: str, attachments: list[Attachment]) -> str:
    """What this turn contributes to later calls: the prompt and the files' text (cut to a
    bound), images by name."""
    text = prompt
    for item in attachments:
        if item.kind == "image":
            text += f"\n\n(Image {item.filename} was attached to this message.)"
        else:
            text += f"\n\n--- File: {item.filename} ---\n{item.text}"
    if len(text) > TURN_CONTEXT_CHARS:
        omitted = len(text) - TURN_CONTEXT_CHARS
        text = text[:TURN_CONTEXT_CHARS] + f"\n[... {omitted} more characters not repeated]"
    return text


def add_turn(request: HttpRequest, turn: dict[str, Any]) -> int:
    turns = conversation_turns(request)
    number = (turns[-1]["number"] + 1) if turns else 1
    turns = [*turns, {**turn, "number": number}][-MAX_TURNS:]
    request.session[SESSION_KEY] = turns
    return number


# --- the page ------------------------------------------------------------------------------------
def active_agent_names() -> list[str]:
    return sorted(set(selectors.agent_list(active=True).values_list("name", flat=True)))


def page(
    request: HttpRequest,
    form: TaskForm,
    *,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    turns = conversation_turns(request)
    shown = [{**turn, "answer_html": render_markdown(turn.get("answer", ""))} for turn in turns]
    context = {
        "form": form,
        "turns": shown,
        "error": error,
        "limits": upload_limits(),
        "dropped": bool(turns) and turns[0]["number"] > 1,
        "total_cost": sum_cost(turns),
    }
    return render(request, "agents/task.html", context, status=status)


def sum_cost(turns: list[dict[str, Any]]) -> str | None:
    from decimal import Decimal, InvalidOperation

    total = Decimal(0)
    known = False
    for turn in turns:
        try:
            total += Decimal(turn.get("cost") or "")
            known = True
        except InvalidOperation:
            continue
    return money(total) if known else None


def initial_agent(request: HttpRequest, names: list[str]) -> str:
    turns = conversation_turns(request)
    wanted = request.GET.get("agent") or (turns[-1]["agent"] if turns else "")
    if wanted in names:
        return wanted
    return "InferenceAgent" if "InferenceAgent" in names else (names[0] if names else "")


@csrf_exempt  # checked below, once the upload handlers are in place
@login_required
def task_page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        # The limits must be in place before anything reads the body (the CSRF check would).
        limits = PageUploadLimits(request)
        request.upload_handlers = [
            limits,
            MemoryFileUploadHandler(request),
            TemporaryFileUploadHandler(request),
        ]
        return task_post(request, limits)
    return task_get(request)


@require_GET
def task_get(request: HttpRequest) -> HttpResponse:
    names = active_agent_names()
    form = TaskForm(initial={"agent": initial_agent(request, names)}, agent_names=names)
    return page(request, form)


@csrf_protect
@require_http_methods(["POST"])
def task_post(request: HttpRequest, limits: PageUploadLimits) -> HttpResponse:
    names = active_agent_names()
    try:
        data, files = request.POST, request.FILES
    except RequestDataTooBig:
        form = TaskForm(agent_names=names, initial={"agent": initial_agent(request, names)})
        return page(request, form, error="The prompt is too large to send.", status=413)
    except (TooManyFieldsSent, TooManyFilesSent):
        form = TaskForm(agent_names=names, initial={"agent": initial_agent(request, names)})
        message = f"Too many files: at most {settings.TASK_MAX_FILES} per message."
        return page(request, form, error=message, status=413)

    form = TaskForm(data, agent_names=names)
    if limits.refusal:
        form.is_valid()  # the typed values come back with any other problem
        message = f"{limits.refusal}. Nothing was sent; choose smaller or fewer files."
        return page(request, form, error=message, status=413)
    if not form.is_valid():
        return page(request, form, status=400)

    agent = selectors.agent_get_active(name=form.cleaned_data["agent"])
    if agent is None:  # deactivated since the page was drawn
        form.add_error("agent", "That agent has no active version any more; choose another.")
        return page(request, form, status=400)
    try:
        attachments = [
            attachment_from_upload(
                filename=upload.name or "upload",
                content_type=upload.content_type,
                data=upload.read(),
            )
            for upload in files.getlist("files")
        ]
    except InvalidInput as error:
        return page(request, form, error=error.message, status=400)

    prompt = form.cleaned_data["prompt"]
    turns = conversation_turns(request)
    try:
        outcome = task_run(
            agent=agent,
            prompt=prompt,
            attachments=attachments,
            params=task_params({}),
            history=history_messages(turns),
        )
    except LLMConfigurationError as error:
        return page(request, form, error=f"The LLM is not set up: {error}", status=503)
    except LLMError as error:
        message = f"The LLM call failed: {error}. Your message is kept; try again."
        return page(request, form, error=message, status=502)

    result = outcome.result
    number = add_turn(
        request,
        {
            "agent": agent.name,
            "version": agent.version,
            "model": result.model,
            "prompt": prompt,
            "files": [
                {"filename": item.filename, "kind": item.kind, "mimeType": item.mime_type}
                for item in attachments
            ],
            "context": turn_context(prompt, attachments),
            "answer": result.content or "",
            "usage": result.usage.as_dict() if result.usage else None,
            "cost": money(result.cost_usd),
            "at": now().isoformat(),
        },
    )
    return redirect(reverse("agents:task") + f"#turn-{number}")


@require_POST
@login_required
def task_reset(request: HttpRequest) -> HttpResponse:
    request.session.pop(SESSION_KEY, None)
    messages.success(request, "Started a new conversation.")
    return redirect("agents:task")


# --- Markdown download ---------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "agent"


def turn_markdown(turn: dict[str, Any], *, with_prompt: bool) -> str:
    parts = []
    if with_prompt:
        files = ", ".join(item["filename"] for item in turn.get("files") or [])
        parts.append(f"## You\n\n{turn.get('prompt', '')}\n")
        if files:
            parts.append(f"Files: {files}\n")
        parts.append(f"## {turn.get('agent', 'Agent')} (version {turn.get('version', '?')})\n")
    parts.append(turn.get("answer", "").rstrip() + "\n")
    return "\n".join(parts)


@require_GET
@login_required
def task_download(request: HttpRequest) -> HttpResponse:
    """`?turn=N`: that answer as a Markdown file; `?turn=all`: the whole conversation."""
    turns = conversation_turns(request)
    wanted = request.GET.get("turn", "")
    if wanted == "all" and turns:
        body = "\n".join(turn_markdown(turn, with_prompt=True) for turn in turns)
        filename = "conversation.md"
    else:
        turn = next((t for t in turns if str(t.get("number")) == wanted), None)
        if turn is None:
            raise Http404("No such answer in this conversation.")
        body = turn_markdown(turn, with_prompt=False)
        filename = f"answer-{_slug(turn.get('agent', ''))}-{turn['number']}.md"
    response = HttpResponse(body, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
