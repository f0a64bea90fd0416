"""Every API route against two regular users and one staff user.

The routes come from the URLconf (and the WebSocket routing), so a new route without a row in
CASES fails `test_every_route_has_a_case`. Owned rows (goals, runs, DAGs, executions,
artifacts) belong to alice: bob gets exactly the answer a missing id gets, alice and staff
get through. Lists show alice her rows, bob his, staff both. Shared configuration (agents,
tools) is readable by everyone and writable only with model permissions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.timezone import now
from rest_framework.test import APIClient

from agents.models import Agent
from artifacts.services import artifact_record_write
from config.routing import websocket_urlpatterns
from dags.models import Dag, DagExecution
from dags.tests.planning_helpers import good_plan, planner_agents, reply
from goals.models import Goal
from runs.models import Run
from tests.factories import (
    AgentFactory,
    DagExecutionFactory,
    DagFactory,
    GoalFactory,
    OutputFactory,
    RunFactory,
    ScheduleFactory,
    StepFactory,
    SubStepFactory,
    TokenFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

API_PREFIX = "api/v1/"
MISSING = "missing-id-000000"
HANDLER_METHODS = ("get", "post", "put", "patch", "delete")


# --- the routes -----------------------------------------------------------------------------------
def _walk(patterns: list, prefix: str = "") -> list[tuple[str, Any]]:
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found.extend(_walk(pattern.url_patterns, prefix + str(pattern.pattern)))
        elif isinstance(pattern, URLPattern):
            found.append((prefix + str(pattern.pattern), pattern.callback))
    return found


def api_routes() -> set[tuple[str, str]]:
    """(METHOD, route) for every API route and method the URLconf serves."""
    routes = set()
    for route, callback in _walk(get_resolver().url_patterns):
        if not route.startswith(API_PREFIX):
            continue
        view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        if view is None:  # a plain (streaming) view: GET only
            methods = ["get"]
        else:
            allowed = getattr(view, "http_method_names", HANDLER_METHODS)
            methods = [m for m in HANDLER_METHODS if m in allowed and hasattr(view, m)]
        routes.update((method.upper(), route[len(API_PREFIX) :]) for method in methods)
    return routes


def websocket_routes() -> set[str]:
    return {str(pattern.pattern) for pattern in websocket_urlpatterns}


# --- the people and their rows -------------------------------------------------------------
def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=user).key}")
    return client


@pytest.fixture
def people(db) -> dict[str, Any]:
    return {
        "alice": UserFactory(username="alice"),
        "bob": UserFactory(username="bob"),
        "staff": UserFactory(username="operator", is_staff=True),
        "root": UserFactory(username="root", is_staff=True, is_superuser=True),
    }


@pytest.fixture
def clients(people) -> dict[str, APIClient]:
    return {name: client_for(user) for name, user in people.items()}


def make_world(owner, artifacts_dir, tag: str) -> dict[str, Any]:
    """One of each owned thing, belonging to `owner`."""
    goal = GoalFactory(owner=owner, objective=f"{tag} goal")
    ScheduleFactory(goal=goal)
    run = RunFactory(goal=goal, status=Run.Status.COMPLETED, cost_usd=Decimal(1))
    StepFactory(run=run)
    OutputFactory(run=run)
    dag = DagFactory(
        owner=owner,
        cron_schedule="0 9 * * *",
        schedule_active=True,
        planning_total_cost_usd=Decimal("1" if tag == "alice" else "2"),
    )
    execution = DagExecutionFactory(
        dag=dag,
        owner=owner,
        status=DagExecution.Status.COMPLETED,
        completed_at=now(),
        total_cost_usd=Decimal("10" if tag == "alice" else "20"),
    )
    SubStepFactory(execution=execution)
    name = f"{tag}-notes.md"
    (artifacts_dir / name).write_text(f"{tag} wrote this")
    artifact_record_write(path=name, size=5, owner_id=owner.pk if owner else None)
    return {
        "goal": goal,
        "run": run,
        "dag": dag,
        "execution": execution,
        "artifact": name,
    }


PARAMS = {
    "goal_id": "goal",
    "run_id": "run",
    "dag_id": "dag",
    "execution_id": "execution",
    "name": "artifact",
}


def fill(route: str, world: dict[str, Any] | None, missing: bool = False) -> str:
    def value(match: re.Match) -> str:
        if missing:
            return MISSING
        subject = world[PARAMS[match.group(1)]]
        return subject if isinstance(subject, str) else subject.pk

    return "/" + API_PREFIX + re.sub(r"<(?:\w+:)?(\w+)>", value, route)


def call(client: APIClient, method: str, path: str, body: Any = None, **extra: Any):
    if body is None:
        return getattr(client, method.lower())(path, **extra)
    return getattr(client, method.lower())(path, body, format="json", **extra)


# --- the cases ------------------------------------------------------------------------------------
@dataclass
class Owned:
    """A route on one owned row: bob is told it does not exist; alice and staff get `ok`."""

    ok: set[int]
    body: Any = None
    prepare: Callable[[dict[str, Any]], None] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # A body field that names the row, instead of the URL (execute-dag, dag-run).
    body_key: tuple[str, str] | None = None


@dataclass
class Listing:
    """A list: alice sees her rows, bob his, staff both. `ids` pulls row ids from the body."""

    ids: Callable[[Any], set[str]]
    subject: str
    query: str = ""


@dataclass
class Creates:
    """Makes an owned row; `check(response, people)` asserts who owns it."""

    body: Callable[[dict[str, Any]], Any]
    owner_of: Callable[[Any], Any]
    ok: set[int]
    setup: Callable[[Any], None] | None = None


@dataclass
class SharedRead:
    path: str


@dataclass
class SharedWrite:
    method: str
    body: Any = None


@dataclass
class Stream:
    """An SSE stream of one owned row (checked with the WebSocket streams: they need a
    database other threads can see)."""

    subject: str


@dataclass
class Elsewhere:
    """Covered by a test that needs real workers (named here, checked to exist)."""

    test: str


def _executions_of(body: dict) -> set[str]:
    return {e["id"] for e in body["executions"]}


def _suspend(world: dict[str, Any]) -> None:
    DagExecution.objects.filter(pk=world["execution"].pk).update(
        status=DagExecution.Status.SUSPENDED, completed_at=None
    )


def _start(world: dict[str, Any]) -> None:
    DagExecution.objects.filter(pk=world["execution"].pk).update(
        status=DagExecution.Status.RUNNING, completed_at=None
    )


def _plan_with_fake_llm(fake_llm) -> None:
    planner_agents()
    fake_llm.responder = lambda request: reply(good_plan())


CASES: dict[tuple[str, str], Any] = {
    # goals
    ("GET", "goals"): Listing(lambda body: {g["id"] for g in body}, "goal"),
    ("POST", "goals"): Creates(
        body=lambda world: {"objective": "A new goal made through the API"},
        owner_of=lambda response: Goal.objects.get(pk=response.json()["id"]).owner,
        ok={201},
    ),
    ("GET", "goals/<str:goal_id>"): Owned({200}),
    ("PATCH", "goals/<str:goal_id>"): Owned(
        {200}, body={"objective": "A changed objective for the goal"}
    ),
    ("DELETE", "goals/<str:goal_id>"): Owned({204}),
    ("POST", "goals/<str:goal_id>/pause"): Owned({200}),
    ("POST", "goals/<str:goal_id>/resume"): Owned({200}),
    ("POST", "goals/<str:goal_id>/run"): Owned({200}),
    # runs
    ("GET", "runs"): Listing(lambda body: {r["id"] for r in body}, "run"),
    ("GET", "runs/<str:run_id>"): Owned({200}),
    ("DELETE", "runs/<str:run_id>"): Owned({204}),
    ("GET", "runs/<str:run_id>/steps"): Owned({200}),
    ("GET", "runs/<str:run_id>/outputs"): Owned({200}),
    # A finished run with nothing after the client's position answers 204 (no stream).
    ("GET", "runs/<str:run_id>/events"): Stream("run"),
    # DAGs
    ("GET", "dags"): Listing(lambda body: {d["id"] for d in body["dags"]}, "dag"),
    ("GET", "dags/scheduled"): Listing(lambda body: {d["id"] for d in body}, "dag"),
    ("GET", "dags/<str:dag_id>"): Owned({200}),
    ("PATCH", "dags/<str:dag_id>"): Owned({200}, body={"dagTitle": "Renamed"}),
    ("DELETE", "dags/<str:dag_id>"): Owned(
        {200}, prepare=lambda world: world["execution"].delete()
    ),
    ("DELETE", "dag/<str:dag_id>"): Owned({200}, prepare=lambda world: world["execution"].delete()),
    ("GET", "dags/<str:dag_id>/executions"): Owned({200}),
    ("GET", "dags/<str:dag_id>/costs"): Owned({200}),
    # executions
    ("GET", "dag-executions"): Listing(_executions_of, "execution"),
    ("GET", "dag-executions/<str:execution_id>"): Owned({200}),
    ("DELETE", "dag-executions/<str:execution_id>"): Owned({200}),
    ("GET", "dag-executions/<str:execution_id>/sub-steps"): Owned({200}),
    ("GET", "dag-executions/<str:execution_id>/costs"): Owned({200}),
    ("GET", "dag-executions/<str:execution_id>/events"): Stream("execution"),
    ("POST", "resume-dag/<str:execution_id>"): Owned({202}, prepare=_suspend),
    ("POST", "dag-executions/<str:execution_id>/cancel"): Owned({200}, prepare=_start),
    ("POST", "execute-dag"): Owned({202}, body_key=("dagId", "dag")),
    ("POST", "dag-run"): Owned({202}, body_key=("dagId", "dag")),
    # costs
    ("GET", "costs/summary"): Listing(
        lambda body: {body["totals"]["planningCostUsd"], body["totals"]["executionCostUsd"]},
        "costs",
        query="?from=30d",
    ),
    # planning (creates DAGs)
    ("POST", "create-dag"): Creates(
        body=lambda world: {"goal-text": "Plan something", "agentName": "DecomposerV8"},
        owner_of=lambda response: Dag.objects.get(pk=response.json()["dagId"]).owner,
        ok={200},
        setup=_plan_with_fake_llm,
    ),
    ("POST", "create-and-execute-dag"): Creates(
        body=lambda world: {"goal-text": "Plan something", "agentName": "DecomposerV8"},
        owner_of=lambda response: DagExecution.objects.get(pk=response.json()["executionId"]).owner,
        ok={202},
        setup=_plan_with_fake_llm,
    ),
    ("POST", "dag-experiments"): Elsewhere(
        "dags/tests/test_planning_workers.py::"
        "test_experiments_plan_every_pair_in_parallel_and_store_each_plan"
    ),
    # artifacts
    ("GET", "artifacts"): Listing(lambda body: set(body), "artifact"),
    ("GET", "artifacts/<path:name>"): Owned({200}),
    # shared configuration
    ("GET", "agents"): SharedRead("/api/v1/agents"),
    ("GET", "agents/resolve/<str:name>"): SharedRead("/api/v1/agents/resolve/Shared"),
    ("GET", "agents/<str:agent_id>"): SharedRead("/api/v1/agents/{agent}"),
    ("GET", "tools"): SharedRead("/api/v1/tools"),
    # the index of the API (names of resources, no data)
    ("GET", ""): SharedRead("/api/v1/"),
    ("POST", "agents"): SharedWrite(
        "POST", {"name": "Fresh", "version": "1.0.0", "promptTemplate": "Hi."}
    ),
    ("PATCH", "agents/<str:agent_id>"): SharedWrite("PATCH", {"promptTemplate": "Changed."}),
    ("DELETE", "agents/<str:agent_id>"): SharedWrite("DELETE"),
    ("POST", "agents/<str:agent_id>/activate"): SharedWrite("POST"),
    # One agent call, nothing stored: anyone logged in may use it.
    ("POST", "task"): SharedRead("/api/v1/task"),
}

WEBSOCKET_CASES = {
    "ws/dag-executions/<str:execution_id>/": "execution",
    "ws/runs/<str:run_id>/": "run",
}


def test_every_route_has_a_case():
    routes = api_routes()
    assert not routes - set(CASES), f"routes without an access case: {sorted(routes - set(CASES))}"
    assert not set(CASES) - routes, f"cases for routes that are gone: {set(CASES) - routes}"
    assert websocket_routes() == set(WEBSOCKET_CASES)


def test_cases_elsewhere_exist():
    import importlib

    for case in CASES.values():
        if isinstance(case, Elsewhere):
            path, name = case.test.split("::")
            module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
            assert callable(getattr(module, name))


# --- the checks -----------------------------------------------------------------------------------
def _check_owned(key, case: Owned, people, clients, artifacts_dir) -> None:
    method, route = key
    for actor in ("bob", "alice", "staff"):
        world = make_world(people["alice"], artifacts_dir, "alice")
        if case.prepare:
            case.prepare(world)
        body = case.body
        path = fill(route, world)
        missing_path = fill(route, world, missing=True)
        missing_body = body
        if case.body_key:
            field_name, subject = case.body_key
            body = {field_name: world[subject].pk}
            missing_body = {field_name: MISSING}
        response = call(clients[actor], method, path, body, **case.headers)
        if actor == "bob":
            missing = call(clients[actor], method, missing_path, missing_body, **case.headers)
            assert response.status_code == missing.status_code == 404, (key, response.content)
            hidden = response.content.decode()
            for subject in world.values():
                name = subject if isinstance(subject, str) else subject.pk
                if name:  # a row the case deleted first has none
                    hidden = hidden.replace(name, MISSING)
            assert hidden == missing.content.decode(), key
            assert Goal.objects.filter(pk=world["goal"].pk).exists()
            assert Dag.objects.filter(pk=world["dag"].pk).exists()
            assert Run.objects.filter(pk=world["run"].pk).exists()
        else:
            assert response.status_code in case.ok, (key, actor, response.content)


def _check_listing(case: Listing, people, clients, artifacts_dir, route: str) -> None:
    alice = make_world(people["alice"], artifacts_dir, "alice")
    bob = make_world(people["bob"], artifacts_dir, "bob")
    path = "/" + API_PREFIX + route + case.query

    def seen(actor: str) -> set[str]:
        response = clients[actor].get(path)
        assert response.status_code == 200, response.content
        return case.ids(response.json())

    if case.subject == "costs":  # planning and execution totals
        assert {Decimal(value) for value in seen("alice")} == {Decimal(1), Decimal(10)}
        assert {Decimal(value) for value in seen("bob")} == {Decimal(2), Decimal(20)}
        assert {Decimal(value) for value in seen("staff")} == {Decimal(3), Decimal(30)}
        return

    def ids(world: dict[str, Any]) -> set[str]:
        subject = world[case.subject]
        return {subject if isinstance(subject, str) else subject.pk}

    assert ids(alice) <= seen("alice") and not ids(bob) & seen("alice")
    assert ids(bob) <= seen("bob") and not ids(alice) & seen("bob")
    assert ids(alice) | ids(bob) <= seen("staff")


@pytest.mark.parametrize(
    "key",
    sorted(key for key, case in CASES.items() if not isinstance(case, Stream)),
    ids=lambda key: f"{key[0]} {key[1]}",
)
def test_route_applies_the_ownership_rule(key, people, clients, artifacts_dir, request):
    case = CASES[key]
    method, route = key
    if isinstance(case, Owned):
        _check_owned(key, case, people, clients, artifacts_dir)
    elif isinstance(case, Listing):
        _check_listing(case, people, clients, artifacts_dir, route)
    elif isinstance(case, Creates):
        if case.setup:
            case.setup(request.getfixturevalue("fake_llm"))
        for actor in ("alice", "bob", "staff"):
            response = call(clients[actor], method, "/" + API_PREFIX + route, case.body({}))
            assert response.status_code in case.ok, (actor, response.content)
            assert case.owner_of(response) == people[actor]
    elif isinstance(case, SharedRead):
        agent = AgentFactory(name="Shared", active=True)
        path = case.path.format(agent=agent.pk)
        if method == "POST":  # the task endpoint: reaches the agent lookup, stores nothing
            response = clients["bob"].post(path, {"taskName": "Nobody", "prompt": "Hi"})
            assert response.status_code == 404
            assert response.json()["error"] == "No active agent found with name: Nobody"
            return
        for actor in ("alice", "bob", "staff"):
            assert clients[actor].get(path).status_code == 200, actor
    elif isinstance(case, SharedWrite):
        for actor, allowed in (("alice", False), ("staff", False), ("root", True)):
            agent = AgentFactory(name=f"Shared-{actor}")
            path = "/" + API_PREFIX + route.replace("<str:agent_id>", agent.pk)
            body = case.body
            if body and "name" in body:
                body = {**body, "name": f"{body['name']}-{actor}"}
            response = call(clients[actor], method, path, body)
            if allowed:
                assert response.status_code < 300, (actor, response.content)
            else:
                assert response.status_code == 403, (actor, response.content)
    elif isinstance(case, Elsewhere):
        pytest.skip(f"needs real workers: {case.test}")


# --- WebSocket streams ---------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("route", sorted(WEBSOCKET_CASES))
def test_websocket_streams_apply_the_ownership_rule(route, artifacts_dir):
    from dags.tests.test_events_ws import ORIGIN, open_socket, receive, receive_close

    alice = UserFactory(username="alice")
    people = {
        "alice": alice,
        "bob": UserFactory(username="bob"),
        "staff": UserFactory(username="operator", is_staff=True),
    }
    world = make_world(alice, artifacts_dir, "alice")
    subject = world[WEBSOCKET_CASES[route]]
    path = "/" + re.sub(r"<(?:\w+:)?\w+>", subject.pk, route)
    for actor, user in people.items():
        key = TokenFactory(user=user).key
        socket = open_socket(f"{path}?token={key}", headers=(ORIGIN,))
        first = receive(socket)
        if actor == "bob":
            assert "error" in first
            assert receive_close(socket)["code"] == 4404
            missing = open_socket(f"{path.replace(subject.pk, MISSING)}?token={key}")
            assert json.dumps(first).replace(subject.pk, MISSING) == json.dumps(receive(missing))
        else:
            assert first["id"] is None and "data" in first, (actor, first)
            assert receive_close(socket)["code"] == 1000


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "route", sorted(route for (_m, route), case in CASES.items() if isinstance(case, Stream))
)
def test_sse_streams_apply_the_ownership_rule(route, artifacts_dir):
    from django.test import Client

    alice = UserFactory(username="alice")
    people = {
        "alice": alice,
        "bob": UserFactory(username="bob"),
        "staff": UserFactory(username="operator", is_staff=True),
    }
    world = make_world(alice, artifacts_dir, "alice")
    subject = world[CASES[("GET", route)].subject]
    for actor, user in people.items():
        client = Client(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=user).key}")
        # A finished subject with nothing after the client's position: 204, no stream.
        response = client.get(fill(route, world), HTTP_LAST_EVENT_ID="0")
        if actor == "bob":
            missing = client.get(fill(route, world, missing=True), HTTP_LAST_EVENT_ID="0")
            assert response.status_code == missing.status_code == 404
            assert response.content.decode().replace(subject.pk, MISSING) == (
                missing.content.decode()
            )
        else:
            assert response.status_code == 204, (actor, response.content)


# --- browser pages ----------------------------------------------------------------------------
# Pages of these namespaces must each have a case (other apps' pages have their own tests).
PAGE_NAMESPACES = ("goals", "runs")
PAGE_STEP_NO = 9999


@dataclass
class Page:
    """A page route. `subject` names the owned row in the URL (None: a list or form). For bob,
    someone else's row answers exactly as a missing one (a 404 page for GETs; for actions, the
    same redirect with "no longer exists") and nothing changes; alice and staff get `ok`."""

    method: str
    ok: set[int]
    subject: str | None = None
    body: dict[str, str] = field(default_factory=dict)


PAGE_CASES: dict[str, Page] = {
    "goals:list": Page("GET", {200}),
    "goals:new": Page("GET", {200}),
    "goals:schedule-preview": Page("GET", {200}),
    "goals:detail": Page("GET", {200}, "goal"),
    "goals:edit": Page("GET", {200}, "goal"),
    "goals:run": Page("POST", {302}, "goal"),
    "goals:pause": Page("POST", {302}, "goal"),
    "goals:resume": Page("POST", {302}, "goal"),
    "goals:delete": Page("POST", {302}, "goal"),
    "runs:list": Page("GET", {200}),
    "runs:detail": Page("GET", {200}, "run"),
    "runs:live": Page("GET", {200}, "run"),
    "runs:step": Page("GET", {200}, "run"),
    "runs:cancel": Page("POST", {302}, "run"),
}


def page_routes() -> dict[str, str]:
    """URL name ("goals:detail") → route, for the page namespaces."""
    routes = {}
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and pattern.namespace in PAGE_NAMESPACES:
            for child in pattern.url_patterns:
                routes[f"{pattern.namespace}:{child.name}"] = str(pattern.pattern) + str(
                    child.pattern
                )
    return routes


def test_every_page_route_has_a_case():
    assert set(page_routes()) == set(PAGE_CASES)


@pytest.mark.parametrize("name", sorted(PAGE_CASES))
def test_page_applies_the_ownership_rule(name, people, artifacts_dir, client, settings):
    from django.test import Client

    settings.CELERY_TASK_ALWAYS_EAGER = False
    case = PAGE_CASES[name]
    route = page_routes()[name]
    for actor in ("bob", "alice", "staff"):
        world = make_world(people["alice"], artifacts_dir, "alice")
        world["run"].status = Run.Status.RUNNING
        world["run"].save(update_fields=["status"])
        StepFactory(run=world["run"], step_no=PAGE_STEP_NO)
        browser = Client()
        browser.force_login(people[actor])

        def open_page(subject_id: str | None, browser=browser):
            path = "/" + route.replace("<int:step_no>", str(PAGE_STEP_NO))
            path = re.sub(r"<(?:\w+:)?\w+>", subject_id or "", path)
            if case.method == "GET":
                return browser.get(path)
            return browser.post(path, case.body)

        subject = world[case.subject].pk if case.subject else None
        response = open_page(subject)
        if actor == "bob" and subject:
            missing = open_page(MISSING)
            assert response.status_code == missing.status_code, name
            assert response.status_code in {404, 302}, name
            if response.status_code == 302:
                assert response["Location"] == missing["Location"]
            assert subject not in response.content.decode()
            goal = Goal.objects.get(pk=world["goal"].pk)
            assert goal.status == Goal.Status.ACTIVE
            assert Run.objects.get(pk=world["run"].pk).status == Run.Status.RUNNING
            assert Run.objects.filter(goal=goal).count() == 1
        else:
            assert response.status_code in case.ok, (name, actor, response.content[:300])
        if case.subject is None and case.method == "GET" and name.endswith(":list"):
            page = response.content.decode()
            assert (world["goal"].pk in page or world["run"].pk in page) == (actor != "bob")


# --- artifacts, costs and system pages -------------------------------------------------------
# The browser pages of artifacts, costs and the system page, through a logged-in session: the
# same rule as the API (a file of someone else's is the same 404 as a missing one; lists and
# sums count the viewer's rows; staff see all; system details are for staff).
DATA_PAGE_URL_NAMES = ("artifacts:", "dags:costs", "system")


def data_page_routes() -> set[str]:
    """Page routes (not API, admin or health) whose URL names start with DATA_PAGE_URL_NAMES."""
    found = set()

    def walk(patterns: list, prefix: str = "", namespace: str = "") -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
            elif isinstance(pattern, URLPattern) and (
                f"{namespace}{pattern.name}".startswith(DATA_PAGE_URL_NAMES)
            ):
                found.add(prefix + str(pattern.pattern))

    walk(get_resolver().url_patterns)
    return found


def _stable(body: str) -> str:
    """A page without its per-response CSRF tokens (masked differently every time)."""
    body = re.sub(r'"X-CSRFToken": "[^"]+"', "", body)
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)


def _page_total(body: str) -> Decimal:
    return Decimal(re.search(r'data-testid="total-cost">\$([\d.,]+)<', body).group(1))


def _csv_total(body: str) -> Decimal:
    return Decimal(body.strip().splitlines()[-1].split(",")[-1])


DATA_PAGE_CASES: dict[str, Any] = {
    "artifacts": "listing",
    "artifacts/<path:name>": "owned",
    "costs": "sums",
    "costs/export.csv": "sums",
    "system": "staff details",
    "system/checks": "staff details",
}


def test_every_data_page_route_has_a_case():
    assert data_page_routes() == set(DATA_PAGE_CASES)


def _data_page_session(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("route", sorted(DATA_PAGE_CASES))
def test_data_page_applies_the_ownership_rule(route, people, artifacts_dir):
    from ops import health

    health.reset_cache()
    case = DATA_PAGE_CASES[route]
    sessions = {name: _data_page_session(user) for name, user in people.items()}
    alice = make_world(people["alice"], artifacts_dir, "alice")
    bob = make_world(people["bob"], artifacts_dir, "bob")
    if case == "owned":
        for query in ("", "?download=1", "?raw=1"):
            path = "/artifacts/" + alice["artifact"] + query
            missing_path = "/artifacts/" + MISSING + query
            seen = sessions["bob"].get(path)
            missing = sessions["bob"].get(missing_path)
            assert seen.status_code == missing.status_code == 404
            assert _stable(seen.content.decode()).replace(alice["artifact"], MISSING) == (
                _stable(missing.content.decode())
            )
            for actor in ("alice", "staff"):
                assert sessions[actor].get(path).status_code == 200, (actor, query)
    elif case == "listing":
        found = {
            actor: set(
                re.findall(
                    r'data-artifact="([^"]+)"', sessions[actor].get("/artifacts").content.decode()
                )
            )
            for actor in ("alice", "bob", "staff")
        }
        assert found["alice"] == {alice["artifact"]}
        assert found["bob"] == {bob["artifact"]}
        assert found["staff"] >= {alice["artifact"], bob["artifact"]}
    elif case == "sums":
        read = _page_total if route == "costs" else _csv_total
        totals = {
            actor: read(sessions[actor].get("/" + route).content.decode())
            for actor in ("alice", "bob", "staff")
        }
        assert totals == {"alice": Decimal(11), "bob": Decimal(22), "staff": Decimal(33)}
    else:
        for actor in ("alice", "bob", "staff"):
            body = sessions[actor].get("/" + route).content.decode()
            detailed = "Versions" in body or 'data-check="database"' in body
            assert detailed == (actor == "staff"), actor


# --- pages of shared configuration (agents, tools) and the task page ---------------------
# Pages answer with the same rules: login first (a redirect, not a 401), shared configuration
# readable by everyone and changed only with model permissions (a 403 page otherwise), and a
# user's own things (the task page's conversation, kept in the session) seen by nobody else.
SHARED_PAGE_NAMESPACES = ("agents", "tools")


def shared_page_routes() -> set[tuple[str, str]]:
    """(namespace, route) of every page route in the namespaces this matrix covers."""
    routes = set()
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and pattern.namespace in SHARED_PAGE_NAMESPACES:
            for route, _callback in _walk(pattern.url_patterns):
                routes.add((pattern.namespace, route))
    return routes


@dataclass
class PageRead:
    """A GET page everyone logged in may open."""


@dataclass
class PageUse:
    """A POST that reads shared configuration and changes nothing shared: everyone may."""

    data: dict[str, str]
    ok: int


@dataclass
class PageChange:
    """A page that changes agents: only with the permission (superuser here), else 403."""

    method: str
    ok: int
    data: dict[str, str] = field(default_factory=dict)


@dataclass
class PagePrivate:
    """Something of the user's own session: the owner gets it, anyone else a 404."""


PAGE_FORM = {
    "name": "Paged",
    "version": "9",
    "prompt_template": "Hello {{currentDate}}",
    "metadata": "{}",
    "action": "save",
}
SHARED_PAGE_CASES: dict[tuple[str, str], Any] = {
    ("agents", "agents"): PageRead(),
    ("agents", "agents/new"): PageChange("POST", 302, PAGE_FORM),
    ("agents", "agents/prompt-preview"): PageUse({"prompt_template": "{{tools}}"}, 200),
    ("agents", "agents/<str:agent_id>"): PageRead(),
    ("agents", "agents/<str:agent_id>/edit"): PageChange("POST", 302, PAGE_FORM),
    ("agents", "agents/<str:agent_id>/activate"): PageChange("POST", 302),
    ("agents", "agents/<str:agent_id>/delete"): PageChange("POST", 302),
    ("agents", "agents/<str:agent_id>/test"): PageUse({"prompt": "Hi"}, 200),
    ("agents", "task"): PageRead(),
    ("agents", "task/new"): PageUse({}, 302),
    ("agents", "task/download"): PagePrivate(),
    ("tools", "tools"): PageRead(),
}


def test_every_shared_config_page_route_has_a_case():
    routes = shared_page_routes()
    assert routes == set(SHARED_PAGE_CASES), routes ^ set(SHARED_PAGE_CASES)


def page_client(user):
    from django.test import Client

    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("key", sorted(SHARED_PAGE_CASES), ids=lambda key: key[1])
def test_shared_config_page_applies_the_access_rule(key, people, fake_llm):
    case = SHARED_PAGE_CASES[key]
    _namespace, route = key
    agent = AgentFactory(name="PagedAgent", version="1", active=True)

    def path(agent_id: str = agent.pk) -> str:
        return "/" + route.replace("<str:agent_id>", agent_id)

    method = "get"
    if isinstance(case, PageUse):
        method = "post"
    elif isinstance(case, PageChange):
        method = case.method.lower()
    anonymous = getattr(page_client(None), method)(path())
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login?next=")

    if isinstance(case, PageRead):
        for actor in ("alice", "staff", "root"):
            assert page_client(people[actor]).get(path()).status_code == 200, actor
    elif isinstance(case, PageUse):
        for actor in ("alice", "staff", "root"):
            response = page_client(people[actor]).post(path(), case.data)
            assert response.status_code == case.ok, (actor, response.content[:300])
    elif isinstance(case, PageChange):
        for actor in ("alice", "staff"):
            before = list(Agent.objects.values_list("id", "name", "version", "active"))
            response = getattr(page_client(people[actor]), method)(path(), case.data)
            assert response.status_code == 403, actor
            assert list(Agent.objects.values_list("id", "name", "version", "active")) == before
        spare = AgentFactory(name="Spare", version="1")  # deletable: not active, no goals
        response = getattr(page_client(people["root"]), method)(path(spare.pk), case.data)
        assert response.status_code == case.ok, response.content[:300]
        if "<str:agent_id>" in route:
            missing = getattr(page_client(people["root"]), method)(path(MISSING), case.data)
            assert missing.status_code == 404
    elif isinstance(case, PagePrivate):
        alice = page_client(people["alice"])
        alice.post("/task", {"agent": agent.name, "prompt": "Mine"})
        assert alice.get(path() + "?turn=1").status_code == 200
        bob = page_client(people["bob"])
        assert bob.get(path() + "?turn=1").status_code == 404
