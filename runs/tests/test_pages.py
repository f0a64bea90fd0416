"""The run pages through Django's test client: counts, filters, sorting, the detail page and
its partial, cancel, ownership, hostile content, query counts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.timezone import now

from goals.models import Memory
from runs.events import RUN_STEP, emit_run_event
from runs.models import Output, Run
from runs.services import CANCELLED_ERROR
from tests.factories import (
    DEFAULT_OWNER,
    GoalFactory,
    MemoryFactory,
    OutputFactory,
    RunFactory,
    StepFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

HOSTILE = (
    "<script>alert('xss')</script><img src=x onerror=\"alert('img')\">"
    "<iframe src=\"javascript:alert('frame')\"></iframe>[link](javascript:alert('link'))"
)


@pytest.fixture
def owner():
    return UserFactory(username=DEFAULT_OWNER)


@pytest.fixture
def browser_client(client, owner):
    client.force_login(owner)
    return client


def query_count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(queries)


def step_event(run: Run, number: int, tool: str | None = None) -> None:
    payload = {"stepNo": number, "thought": "", "toolName": tool, "toolInput": None}
    payload.update({"observation": None, "durationMs": 5, "error": None})
    emit_run_event(run_id=run.id, type=RUN_STEP, payload=payload)


def finished_run(goal=None, *, seconds: int, status: str = Run.Status.COMPLETED, **extra) -> Run:
    started = now() - timedelta(hours=1)
    return RunFactory(
        **({"goal": goal} if goal else {}),
        status=status,
        started_at=started,
        ended_at=started + timedelta(seconds=seconds),
        **extra,
    )


@pytest.mark.parametrize("url", ["/runs", "/runs/run_x", "/runs/run_x/live"])
def test_run_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/login?next={url}"


def test_someone_elses_run_is_a_404(browser_client):
    theirs = RunFactory(goal=GoalFactory(owner=UserFactory(username="bob")), status="running")
    StepFactory(run=theirs, step_no=1)
    for url in (f"/runs/{theirs.id}", f"/runs/{theirs.id}/live", f"/runs/{theirs.id}/steps/1"):
        assert browser_client.get(url).status_code == 404
    response = browser_client.post(f"/runs/{theirs.id}/cancel")
    assert response["Location"] == "/runs"
    theirs.refresh_from_db()
    assert theirs.status == Run.Status.RUNNING
    assert theirs.id not in browser_client.get("/runs").content.decode()


def test_stat_cards_count_every_run_of_the_viewer_not_one_page(browser_client):
    goal = GoalFactory()
    for _ in range(30):
        finished_run(goal, seconds=5)
    for _ in range(4):
        finished_run(goal, seconds=5, status=Run.Status.FAILED)
    RunFactory(goal=goal, status=Run.Status.RUNNING, started_at=now())
    RunFactory(goal=GoalFactory(owner=UserFactory(username="bob")))  # not the viewer's
    page = browser_client.get("/runs", {"status": "failed"}).content.decode()
    assert 'data-testid="runs-total">35<' in page
    assert 'data-testid="runs-completed">30<' in page
    assert 'data-testid="runs-failed">4<' in page
    assert 'data-testid="runs-running">1<' in page
    assert 'data-testid="runs-pending">0<' in page
    # The status filter is in the URL and the table shows only those runs.
    assert page.count('data-run-id="') == 4
    assert '<option value="failed" selected>' in page


def test_columns_sort_by_duration_and_say_so(browser_client):
    goal = GoalFactory()
    quick = finished_run(goal, seconds=3)
    slow = finished_run(goal, seconds=600)
    middle = finished_run(goal, seconds=60)
    page = browser_client.get("/runs", {"sort": "-duration"}).content.decode()
    assert page.index(slow.id) < page.index(middle.id) < page.index(quick.id)
    assert 'aria-sort="descending"><a class="sort" href="?sort=duration">Duration' in page
    assert "10 min 00 s" in page
    page = browser_client.get("/runs", {"sort": "duration"}).content.decode()
    assert page.index(quick.id) < page.index(middle.id) < page.index(slow.id)


def test_detail_shows_steps_budget_outputs_memories_and_timeline(browser_client):
    run = finished_run(seconds=12, step_budget=4, steps_executed=2, cost_usd=Decimal("0.0123"))
    StepFactory(
        run=run,
        step_no=1,
        thought="Look up **recent** news",
        tool_name="webSearch",
        tool_input={"query": "battery news", "limit": 5},
        observation="3 results",
        duration_ms=1500,
    )
    StepFactory(run=run, step_no=2, thought="Write it up", error="disk full")
    OutputFactory(run=run, kind=Output.Kind.SUMMARY, path_or_payload="## Found\n\n- item one")
    OutputFactory(run=run, kind=Output.Kind.FILE, path_or_payload="reports/news.md")
    MemoryFactory(goal=run.goal, content="Remember the sources", metadata={"runId": run.id})
    MemoryFactory(goal=run.goal, content="From another run", metadata={"runId": "run_other"})
    step_event(run, 1, "webSearch")
    page = browser_client.get(f"/runs/{run.id}").content.decode()
    # Closed cards: number, tool, duration, error mark and the start of the thought; the
    # bodies are read when a card is opened.
    assert "Look up **recent** news" in page and "1.5 s" in page
    assert page.count('<span class="badge status-failed">Error</span>') == 1
    assert "disk full" not in page and f'data-url="/runs/{run.id}/steps/1"' in page
    body = browser_client.get(f"/runs/{run.id}/steps/1").content.decode()
    assert "<strong>recent</strong>" in body and "<html" not in body
    assert "&quot;query&quot;: &quot;battery news&quot;" in body and "3 results" in body
    assert "disk full" in browser_client.get(f"/runs/{run.id}/steps/2").content.decode()
    assert browser_client.get(f"/runs/{run.id}/steps/3").status_code == 404
    opened = browser_client.get(f"/runs/{run.id}", {"step": "1"}).content.decode()
    assert '<details class="run-step" id="step-1" data-step="1" open>' in opened
    assert "<strong>recent</strong>" in opened
    assert '<progress class="budget-bar" value="2" max="4"' in page
    assert "(50%)" in page
    assert "<h2>Found</h2>" in page and "reports/news.md" in page
    assert "Remember the sources" in page and "From another run" not in page
    assert "run.step" in page and "step 1 (webSearch)" in page
    assert 'data-last-event-id="1"' in page
    assert "Cancel run" not in page
    partial = browser_client.get(f"/runs/{run.id}/live").content.decode()
    assert 'id="run-steps"' in partial and "<html" not in partial


def test_cancel_stops_a_running_run(browser_client):
    run = RunFactory(status=Run.Status.RUNNING, started_at=now())
    page = browser_client.get(f"/runs/{run.id}").content.decode()
    assert "Cancel run" in page
    assert browser_client.get(f"/runs/{run.id}/cancel").status_code == 405
    response = browser_client.post(f"/runs/{run.id}/cancel", follow=True)
    assert "Run cancelled." in response.content.decode()
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and run.error == CANCELLED_ERROR
    response = browser_client.post(f"/runs/{run.id}/cancel", follow=True)
    assert "The run had already ended." in response.content.decode()


def test_hostile_objective_thought_and_observation_stay_text(browser_client):
    goal = GoalFactory(objective="Objective " + HOSTILE)
    run = RunFactory(goal=goal, status=Run.Status.COMPLETED)
    StepFactory(
        run=run,
        step_no=1,
        thought="Thought " + HOSTILE,
        tool_name="webSearch",
        tool_input={"query": HOSTILE},
        observation="Observation " + HOSTILE,
        error=HOSTILE,
    )
    OutputFactory(run=run, kind=Output.Kind.SUMMARY, path_or_payload=HOSTILE)
    Memory.objects.create(goal=goal, type="note", content=HOSTILE, metadata={"runId": run.id})
    for url in (
        f"/runs/{run.id}",
        f"/goals/{goal.id}",
        "/goals",
        "/runs",
        f"/goals/{goal.id}/edit",
    ):
        response = browser_client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        elements = HostileElements()
        elements.feed(page)
        assert elements.found == [], url
        # The words are there, as text.
        assert "&lt;script&gt;alert(" in page or "&lt;script&gt;ale…" in page, url


class HostileElements(HTMLParser):
    """Elements or attributes the hostile strings would create if they were not text: the
    page's own scripts (from /static/) are allowed."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and "alert(" in (values.get("src") or ""):
            self.found.append(f"script {values}")
        if tag in ("iframe", "img") and "alert" in str(values):
            self.found.append(f"{tag} {values}")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{tag} {name}={value}")
            if name in ("href", "src") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"{tag} {name}={value}")

    def handle_data(self, data: str) -> None:
        if "alert('xss')" in data and self.lasttag == "script":
            self.found.append("script body")


def test_list_and_detail_query_counts_do_not_grow_with_rows(browser_client):
    goal = GoalFactory()

    def grow(count: int) -> Run:
        run = None
        for _ in range(count):
            run = finished_run(goal, seconds=5)
        for number in range(count):
            StepFactory(run=run, step_no=number + 1, tool_input={"n": number})
            step_event(run, number + 1)
        OutputFactory(run=run)
        return run

    run = grow(3)
    small = (
        query_count(browser_client, "/runs"),
        query_count(browser_client, f"/runs/{run.id}"),
        query_count(browser_client, f"/runs/{run.id}/live"),
        query_count(browser_client, f"/runs/{run.id}?step=2"),
    )
    run = grow(30)
    large = (
        query_count(browser_client, "/runs"),
        query_count(browser_client, f"/runs/{run.id}"),
        query_count(browser_client, f"/runs/{run.id}/live"),
        query_count(browser_client, f"/runs/{run.id}?step=2"),
    )
    assert large == small
