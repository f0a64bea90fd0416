"""`GET /api/v1/tools`: the seven definitions, schemas in the shape clients read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.registry import TOOL_NAMES, tool_definitions

REFERENCE = Path(__file__).parent / "data" / "upstream_tools_schema.json"


def without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: without_descriptions(value) for key, value in node.items() if key != "description"
        }
    if isinstance(node, list):
        return [without_descriptions(item) for item in node]
    return node


@pytest.mark.django_db
def test_tool_list_schemas_equal_the_reference(api):
    response = api.get("/api/v1/tools")

    assert response.status_code == 200
    body = response.json()
    reference = json.loads(REFERENCE.read_text())
    assert [item["function"]["name"] for item in body] == [
        "webSearch",
        "fetchPage",
        "fetchURLs",
        "writeFile",
        "readFile",
        "sendWebhook",
        "sendEmail",
    ]
    assert without_descriptions(body) == reference
    # Our own words: every tool and every parameter is described.
    for item in body:
        assert item["function"]["description"]
        for name, schema in item["function"]["parameters"]["properties"].items():
            assert schema.get("description"), (item["function"]["name"], name)


@pytest.mark.django_db
def test_tool_by_name_returns_one_definition(api):
    response = api.get("/api/v1/tools", {"name": "fetchPage"})

    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "function"
    assert body["function"]["name"] == "fetchPage"
    assert body["function"]["parameters"]["required"] == ["url"]


@pytest.mark.django_db
def test_unknown_tool_name_is_404(api):
    response = api.get("/api/v1/tools", {"name": "deleteEverything"})

    assert response.status_code == 404
    assert response.json() == {"error": "Tool not found: deleteEverything"}


@pytest.mark.django_db
def test_tool_list_needs_authentication(anon_client):
    assert anon_client.get("/api/v1/tools").status_code == 401


@pytest.mark.django_db
def test_tools_endpoint_is_in_the_openapi_schema(api):
    response = api.get("/api/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    operation = schema["paths"]["/api/v1/tools"]["get"]
    assert operation["operationId"] == "list_tools"
    assert any(parameter["name"] == "name" for parameter in operation["parameters"])


def test_definitions_filtered_by_name_follow_the_given_order():
    names = [
        item["function"]["name"] for item in tool_definitions(["sendEmail", "nope", "webSearch"])
    ]

    assert names == ["sendEmail", "webSearch"]
    assert [item["function"]["name"] for item in tool_definitions()] == list(TOOL_NAMES)
    assert len(tool_definitions([])) == 7


def test_definitions_are_copies():
    first = tool_definitions(["fetchPage"])[0]
    first["function"]["parameters"]["properties"].clear()

    assert tool_definitions(["fetchPage"])[0]["function"]["parameters"]["properties"]


@pytest.mark.django_db
def test_blank_name_lists_every_tool(api):
    response = api.get("/api/v1/tools?name=")

    assert response.status_code == 200
    assert len(response.json()) == 7
