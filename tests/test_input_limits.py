"""No stored value and no request can cause a 500: input is bounded at the edge, a write that
fails stores nothing, and a read never fails on a stored row."""

from __future__ import annotations

import json

import orjson
import pytest

from agents.models import Agent
from config.api.renderers import UNRENDERABLE, dumps
from config.api.validation import JSON_MAX_DEPTH
from dags.models import Dag
from goals.models import Goal
from tests.factories import AgentFactory, DagExecutionFactory, DagFactory, GoalFactory

pytestmark = pytest.mark.django_db


def nested(depth: int) -> dict:
    """A JSON object `depth` levels deep: {"a": {"a": ... {}}}."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def post_json(api, path: str, body: object, method: str = "post"):
    # The standard library encodes deeper values than orjson (what a client may send).
    return getattr(api, method)(path, data=json.dumps(body), content_type="application/json")


def assert_json_400(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert any(issue["path"][-1] == field for issue in body["validation_errors"]), body


# --- depth, size and integer bounds on every JSON field --------------------------------------


@pytest.fixture
def agent_admin_api(api, user):
    """Agents are shared configuration: changing them needs model permissions."""
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    return api


def test_deeply_nested_agent_metadata_is_refused_and_nothing_is_stored(agent_admin_api):
    response = post_json(
        agent_admin_api,
        "/api/v1/agents",
        {"name": "deep", "version": "1", "promptTemplate": "hi", "metadata": nested(300)},
    )
    assert_json_400(response, "metadata")
    assert not Agent.objects.filter(name="deep").exists()
    assert agent_admin_api.get("/api/v1/agents").status_code == 200


def test_agent_metadata_at_the_depth_limit_is_accepted(agent_admin_api):
    response = post_json(
        agent_admin_api,
        "/api/v1/agents",
        {"name": "ok", "version": "1", "promptTemplate": "hi", "metadata": nested(JSON_MAX_DEPTH)},
    )
    assert response.status_code == 201, response.content
    deeper = post_json(
        agent_admin_api,
        "/api/v1/agents",
        {
            "name": "no",
            "version": "1",
            "promptTemplate": "hi",
            "metadata": nested(JSON_MAX_DEPTH + 1),
        },
    )
    assert_json_400(deeper, "metadata")


def test_deeply_nested_goal_constraints_are_refused(api):
    goal = GoalFactory(params={"constraints": "be brief"})
    body = {"objective": "A goal with constraints", "params": {"constraints": nested(300)}}
    assert_json_400(post_json(api, "/api/v1/goals", body), "constraints")
    assert Goal.objects.count() == 1
    patch = post_json(
        api, f"/api/v1/goals/{goal.id}", {"params": {"constraints": nested(300)}}, "patch"
    )
    assert_json_400(patch, "constraints")
    goal.refresh_from_db()
    assert goal.params == {"constraints": "be brief"}
    assert api.get("/api/v1/goals").status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("params", nested(300)),
        # orjson reads integers past 64 bits as floats, except unsigned 64-bit ones.
        ("params", {"seed": 2**64 - 1}),
        ("result", nested(300)),
        ("params", {"text": "x" * (300 * 1024)}),
    ],
)
def test_dag_json_fields_out_of_bounds_are_refused(api, field, value):
    dag = DagFactory(params={"temperature": 0.5})
    before = (dag.params, dag.result)
    assert_json_400(post_json(api, f"/api/v1/dags/{dag.id}", {field: value}, "patch"), field)
    dag.refresh_from_db()
    assert (dag.params, dag.result) == before
    assert api.get("/api/v1/dags").status_code == 200


@pytest.mark.parametrize("seed", [1e20, 10**20, 2**64 - 1, -(2**64)])
def test_a_seed_beyond_64_bits_is_refused_before_planning(api, seed):
    body = {"goal-text": "Plan something", "agentName": "DecomposerV8", "seed": seed}
    response = post_json(api, "/api/v1/create-dag", body)
    assert_json_400(response, "seed")
    assert not Dag.objects.exists()


# --- query limits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/goals", "/api/v1/dags", "/api/v1/agents", "/api/v1/tools"]
)
def test_more_than_a_thousand_query_parameters_answer_a_json_400(api, path):
    query = "&".join(f"p{index}=1" for index in range(1500))
    response = api.get(f"{path}?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["statusCode"] == 400
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in body["message"]


@pytest.mark.parametrize(
    "path", ["/api/v1/dags", "/api/v1/dag-executions", "/api/v1/dags/{dag}/executions"]
)
@pytest.mark.parametrize("offset", [2**64, 2**63, -1])
def test_offsets_beyond_range_answer_400(api, path, offset):
    dag = DagFactory()
    response = api.get(path.format(dag=dag.id), {"offset": offset})
    assert_json_400(response, "offset")
    assert_json_400(api.get(path.format(dag=dag.id), {"limit": 2**64}), "limit")


def test_a_repeated_query_parameter_answers_400(api):
    # The last value alone would be blank and so ignored: repeating is refused instead.
    assert_json_400(api.get("/api/v1/dags?offset=x&offset=%20"), "offset")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-03-01", "to": "2026-01-01"}, "from"),
        ({"from": "9999-12-31", "to": "0001-01-01"}, "from"),
        ({"to": "0001-01-01T00:00:00+05:00"}, "to"),
        ({"from": "2026-02-30"}, "from"),
        ({"to": "2026-13-01T00:00:00"}, "to"),
    ],
)
def test_impossible_or_inverted_cost_ranges_answer_400(api, query, field):
    assert_json_400(api.get("/api/v1/costs/summary", query), field)


def test_extreme_but_ordered_cost_ranges_answer(api):
    assert api.get("/api/v1/costs/summary", {"to": "0001-01-02"}).status_code == 200
    wide = api.get("/api/v1/costs/summary", {"from": "0001-01-01", "to": "9999-12-31"})
    assert wide.status_code == 200


# --- a read never fails on a stored row -------------------------------------------------------


def test_lists_answer_even_with_rows_no_validation_would_accept(api):
    """Rows written around the API (the admin, SQL, an older version) with values the JSON
    encoder cannot take directly: nesting past its limit and integers past 64 bits."""
    agent = AgentFactory()
    Agent.objects.filter(pk=agent.pk).update(metadata=nested(300))
    dag = DagFactory()
    Dag.objects.filter(pk=dag.pk).update(params={"seed": 10**20}, result=nested(400))
    goal = GoalFactory()
    Goal.objects.filter(pk=goal.pk).update(params={"constraints": nested(300)})
    DagExecutionFactory(dag=dag)

    agents = api.get("/api/v1/agents")
    assert agents.status_code == 200
    assert api.get(f"/api/v1/agents/{agent.id}").status_code == 200
    dags = api.get("/api/v1/dags")
    assert dags.status_code == 200
    assert dags.json()["dags"][0]["params"] == {"seed": 10**20}
    assert api.get(f"/api/v1/dags/{dag.id}").status_code == 200
    assert api.get("/api/v1/goals").status_code == 200
    assert api.get("/api/v1/dag-executions").status_code == 200


def test_values_nested_past_any_encoder_are_cut_off_with_a_note():
    value: list = []
    for _ in range(5000):
        value = [value]
    decoded = orjson.loads(dumps({"deep": value}))
    depth, item = 0, decoded["deep"]
    while isinstance(item, list):
        depth, item = depth + 1, item[0]
    assert item == UNRENDERABLE
    assert depth < 100
