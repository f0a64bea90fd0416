"""What a tool node receives: its own params with dependency results filled in."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from dags.plan import reference_key, references_in, result_text, substitute_references

# http(s) URLs, or bare `www.` hosts; deliberately not file names such as `report.md`.
URL_PATTERN = re.compile(r"""(?:https?://|www\.)[^\s<>"'`)\]}]+""", re.IGNORECASE)
URL_KEYS = ("url", "URL", "link", "href", "uri")


def parse_result(stored: Any) -> Any:
    """A stored result back in structured form when it is JSON text (tool outputs)."""
    if isinstance(stored, str):
        text = stored.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                return stored
    return stored


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


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def resolve_tool_params(
    *,
    tool_name: str,
    params: Mapping[str, Any] | None,
    dependency_ids: list[str],
    results: Mapping[str, Any],
) -> dict[str, Any]:
    """The tool's input: references replaced; fetchURLs and writeFile get dependency data.

    `results` maps `reference_key(task_id)` to the structured result of each completed task.
    """
    resolved = dict(params or {})
    dependency_results = [
        results[reference_key(dep)] for dep in dependency_ids if reference_key(dep) in results
    ]
    if tool_name == "fetchURLs":
        own = resolved.get("urls")
        own_list = own if isinstance(own, list) else ([own] if own else [])
        own_list = substitute_references(own_list, results)
        gathered: list[Any] = []
        for item in own_list:
            if (
                isinstance(item, str)
                and item.strip()
                and not any(c.isspace() for c in item.strip())
            ):
                gathered.append(item.strip())  # a URL as given (the tool validates it)
            elif isinstance(item, str):
                gathered.extend(urls_in(item))  # text, e.g. a substituted result
            else:
                gathered.append(item)  # an object with a url-like key
        for result in dependency_results:
            gathered.extend(urls_in(result))
        strings = [item for item in gathered if isinstance(item, str)]
        objects = [item for item in gathered if not isinstance(item, str)]
        resolved["urls"] = _unique(strings) + objects
        return resolved
    if tool_name == "writeFile":
        content = resolved.get("content")
        if isinstance(content, str) and references_in(content):
            resolved["content"] = substitute_references(content, results)
        elif dependency_results:
            resolved["content"] = "\n\n".join(
                result_text(result)
                if isinstance(result, str)
                else json.dumps(result, indent=2, ensure_ascii=False)
                for result in dependency_results
            )
        rest = {key: value for key, value in resolved.items() if key != "content"}
        return {**substitute_references(rest, results), "content": resolved.get("content", "")}
    return substitute_references(resolved, results)
