"""The seven tools, in the order `GET /api/v1/tools` lists them, each defined once.

A `Tool` couples a name, a description (ours), a parameters model (which yields both the JSON
Schema and the validation, see `tools.schemas`) and the function that does the work. The
registry is static code, identical in every process.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from tools import files, mail, search, web
from tools.base import DependencyInput, RunOutput, ToolContext, ToolNotFound
from tools.schemas import (
    FetchPageParams,
    FetchUrlsParams,
    ReadFileParams,
    SendEmailParams,
    SendWebhookParams,
    ToolParams,
    WebSearchParams,
    WriteFileParams,
    parameters_schema,
)
from tools.webhooks import send_webhook, webhook_output


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    params_model: type[ToolParams]
    run: Callable[[Any, ToolContext], Any]
    # Whether calling it changes something outside (a file, a message sent): callers use this
    # to avoid repeating such calls.
    side_effects: bool = False
    # A parameter a DAG node may take from its dependencies' results (None: references in the
    # params are substituted, nothing else).
    dependency_input: DependencyInput | None = None
    # Whether its result (`{"path", "size", ...}`) is a file written to the artifacts folder,
    # recorded as an artifact of the execution or run that made the call.
    writes_artifact: bool = False
    # What a successful call counts as among a run's outputs (None: nothing).
    run_output: RunOutput | None = None

    @cached_property
    def parameters(self) -> dict[str, Any]:
        return parameters_schema(self.params_model)

    def definition(self) -> dict[str, Any]:
        """The OpenAI function-calling shape, as served by `GET /api/v1/tools`."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(self.parameters),
            },
        }


_TOOLS: tuple[Tool, ...] = (
    Tool(
        name="webSearch",
        description=(
            "Search the web and return result titles, links and snippets. Put several "
            "searches on separate lines to run them all."
        ),
        params_model=WebSearchParams,
        run=search.web_search,
    ),
    Tool(
        name="fetchPage",
        description=(
            "Download one web page or PDF and return its readable text and title "
            "(public addresses only)."
        ),
        params_model=FetchPageParams,
        run=web.fetch_page,
    ),
    Tool(
        name="fetchURLs",
        description=(
            "Read several pages at once. Accepts URL strings or objects carrying a URL (such "
            "as search results); returns one entry per URL, with an error for those that failed."
        ),
        params_model=FetchUrlsParams,
        run=web.fetch_urls,
        dependency_input=web.URLS_FROM_DEPENDENCIES,
    ),
    Tool(
        name="writeFile",
        description=(
            "Save text to a file in the artifacts folder (sub-folders are created); can "
            "replace the file or append to it."
        ),
        params_model=WriteFileParams,
        run=files.write_file,
        side_effects=True,
        dependency_input=files.CONTENT_FROM_DEPENDENCIES,
        writes_artifact=True,
        run_output=files.written_file_output,
    ),
    Tool(
        name="readFile",
        description="Read a text file from the artifacts folder.",
        params_model=ReadFileParams,
        run=files.read_file,
    ),
    Tool(
        name="sendWebhook",
        description=(
            "POST a JSON object to a webhook URL and return the HTTP status and reply. "
            "Requests are signed when the server has a webhook secret. In a DAG task, each "
            "request carries an Idempotency-Key header that stays the same when the task is "
            "retried, so the receiver can ignore repeats."
        ),
        params_model=SendWebhookParams,
        run=send_webhook,
        side_effects=True,
        run_output=webhook_output,
    ),
    Tool(
        name="sendEmail",
        description=(
            "Send an e-mail (plain text or HTML) with optional CC, BCC and attachments taken "
            "from the artifacts folder or given inline. Needs the server's mail settings. "
            "A DAG task sends its e-mail at most once, even when the task is retried."
        ),
        params_model=SendEmailParams,
        run=mail.send_email,
        side_effects=True,
        run_output=mail.sent_email_output,
    ),
)

_BY_NAME = {tool.name: tool for tool in _TOOLS}

TOOL_NAMES: tuple[str, ...] = tuple(tool.name for tool in _TOOLS)


def get_tool(name: str) -> Tool:
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ToolNotFound(str(name)) from None


def all_tools() -> tuple[Tool, ...]:
    return _TOOLS


def tool_definitions(names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Definitions of the named tools in the order given (unknown names are skipped);
    all tools, in registry order, when `names` is None or empty."""
    wanted = list(names or [])
    if not wanted:
        return [tool.definition() for tool in _TOOLS]
    seen: set[str] = set()
    definitions = []
    for name in wanted:
        if name in _BY_NAME and name not in seen:
            seen.add(name)
            definitions.append(_BY_NAME[name].definition())
    return definitions


def artifact_writing_tool_names() -> tuple[str, ...]:
    """Names of the tools whose results are files written to the artifacts folder."""
    return tuple(tool.name for tool in _TOOLS if tool.writes_artifact)
