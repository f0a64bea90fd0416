"""Editing a DAG's stored plan: the planner's checks apply, and only its owner or staff may."""

import pytest
from rest_framework.test import APIClient

from dags.models import Dag
from tests.factories import AgentFactory, DagFactory, TokenFactory, UserFactory, decomposer_job

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inference_agent():
    return AgentFactory(name="InferenceAgent", active=True)


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=user).key}")
    return client


def tool_task(name: str, params: dict) -> dict:
    return {
        "id": "001",
        "description": "Call a tool",
        "thought": "Needed",
        "action_type": "tool",
        "tool_or_prompt": {"name": name, "params": params},
        "expected_output": "text",
        "dependencies": ["none"],
    }


def patch_result(client: APIClient, dag: Dag, result: dict):
    return client.patch(f"/api/v1/dags/{dag.id}", {"result": result}, format="json")


def test_a_valid_plan_is_stored(api):
    dag = DagFactory()
    plan = decomposer_job(3)
    response = patch_result(api, dag, plan)
    assert response.status_code == 200
    dag.refresh_from_db()
    assert [task["id"] for task in dag.result["sub_tasks"]] == ["001", "002", "003"]


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([tool_task("runShellCommand", {"cmd": "id"})], "runShellCommand"),
        ([tool_task("fetchPage", {"url": 42})], "url"),
        ([tool_task("writeFile", {})], "content"),
    ],
)
def test_unknown_tools_and_bad_params_are_refused(api, tasks, message):
    dag = DagFactory()
    before = dag.result
    response = patch_result(api, dag, decomposer_job(sub_tasks=tasks))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Invalid parameters"
    assert all(issue["path"][0] == "result" for issue in body["validation_errors"])
    assert message in str(body["validation_errors"])
    dag.refresh_from_db()
    assert dag.result == before


def test_unknown_dependencies_and_cycles_are_refused(api):
    plan = decomposer_job(3)
    plan["sub_tasks"][0]["dependencies"] = ["003"]
    plan["sub_tasks"][1]["dependencies"] = ["001", "009"]
    body = patch_result(api, DagFactory(), plan).json()
    messages = " ".join(issue["message"] for issue in body["validation_errors"])
    assert "unknown task '009'" in messages
    assert "cycle" in messages


def test_an_inference_with_an_inactive_agent_is_refused(api):
    plan = decomposer_job(1)
    plan["sub_tasks"][0]["tool_or_prompt"]["name"] = "NoSuchAgent"
    assert patch_result(api, DagFactory(), plan).status_code == 400


def test_a_plan_that_is_not_a_decomposer_job_is_refused(api):
    response = patch_result(api, DagFactory(), {"sub_tasks": "all of them"})
    assert response.status_code == 400
    assert response.json()["validation_errors"][0]["path"][0] == "result"


def test_only_the_owner_or_staff_may_edit_the_plan():
    owner = UserFactory(username="owner")
    dag = DagFactory(owner=owner)
    other = client_for(UserFactory(username="other"))
    staff = client_for(UserFactory(username="operator", is_staff=True))

    refused = patch_result(other, dag, decomposer_job(1))
    assert refused.status_code == 404
    dag.refresh_from_db()
    assert len(dag.result["sub_tasks"]) == 2

    assert patch_result(staff, dag, decomposer_job(1)).status_code == 200
    assert patch_result(client_for(owner), dag, decomposer_job(3)).status_code == 200


def test_the_admin_form_applies_the_same_checks(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    dag = DagFactory()
    bad = decomposer_job(sub_tasks=[tool_task("runShellCommand", {})])
    response = client.get(f"/admin/dags/dag/{dag.id}/change/")
    form = response.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data.update({"result": __import__("json").dumps(bad)})
    data = {key: ("" if value is None else value) for key, value in data.items()}
    for key in ("usage", "generation_stats", "planning_total_usage", "planning_attempts", "params"):
        if key in data and not isinstance(data[key], str):
            data[key] = __import__("json").dumps(data[key])
    posted = client.post(f"/admin/dags/dag/{dag.id}/change/", data)
    assert posted.status_code == 200  # the form again, with the error
    assert "runShellCommand" in posted.content.decode()
    dag.refresh_from_db()
    assert dag.result != bad
