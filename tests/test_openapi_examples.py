"""Every request body in the schema ships an example, and each example passes validation when
sent unedited by a non-staff user authorized with `Bearer <key>`, as Swagger UI sends it."""

from __future__ import annotations

import json

import pytest
import yaml
from rest_framework.test import APIClient

from agents.seeding import agents_seed
from tests.factories import DagFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bearer(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return client


def request_examples(client: APIClient) -> list[tuple[str, str, str, dict]]:
    schema = yaml.safe_load(client.get("/api/schema/").content)
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            for media, content in operation["requestBody"]["content"].items():
                if media == "text/plain":
                    continue
                assert "examples" in content, f"{method.upper()} {path} has no example"
                for example in content["examples"].values():
                    found.append((method, path, media, example["value"]))
    return found


def test_every_request_example_passes_validation_unedited(bearer, fake_llm, user, monkeypatch):
    from dags.execution import dispatch

    monkeypatch.setattr(dispatch, "nodes_send", lambda execution_id, messages: None)
    agents_seed()
    dag = DagFactory(owner=user)
    examples = request_examples(bearer)
    assert len(examples) >= 11
    for method, path, media, value in examples:
        if path == "/api/v1/dag-experiments":
            # It waits for planning on the workers; its example is checked by its serializer.
            from dags.planning.serializers import DagExperimentsIn

            assert DagExperimentsIn(data=value).is_valid()
            continue
        url = path.replace("{agent_id}", "agent_missing").replace("{goal_id}", "goal_missing")
        url = url.replace("{dag_id}", dag.id)
        body = json.loads(json.dumps(value).replace("<a DAG id from GET /api/v1/dags>", dag.id))
        if media == "multipart/form-data":
            response = getattr(bearer, method)(url, body, format="multipart")
        else:
            response = getattr(bearer, method)(url, body, format="json")
        # 404 for the made-up ids and 502 when the scripted LLM's default reply is not a plan
        # are fine: only a validation failure means the example is wrong.
        assert response.status_code != 400, (method, path, response.content[:500])
        assert response.status_code < 500 or response.status_code == 502, (
            method,
            path,
            response.status_code,
        )
