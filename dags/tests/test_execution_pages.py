"""Execution pages through Django's test client: list (search, filter, sort, paging, query
count), detail (steps, diagram, result, costs, events, step dialog), partials, artifacts and
actions. The live behaviour in a real browser is in tests/browser/test_executions.py."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.timezone import now

from dags.events import SUBSTEP_COMPLETED, TOOL_PROGRESS, emit_execution_event
from dags.models import SYNTHESIS_TASK_ID, DagExecution, SubStep
from tests.factories import DagExecutionFactory, DagFactory, SubStepFactory, UserFactory

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def client_in(client):
    user = UserFactory(username="viewer", is_staff=True)
    client.force_login(user)
    return client


def make_execution(*, status="running", steps=3, **fields) -> DagExecution:
    execution = DagExecutionFactory(status=status, total_tasks=steps, started_at=now(), **fields)
    for index in range(1, steps + 1):
        SubStepFactory(
            execution=execution,
            task_id=f"{index:03d}",
            description=f"Step number {index}",
            dependencies=[f"{index - 1:03d}"] if index > 1 else ["none"],
            status=SubStep.Status.COMPLETED if index == 1 else SubStep.Status.PENDING,
            result="first result" if index == 1 else None,
        )
    return execution


# --- list ----------------------------------------------------------------------------------------
def test_list_needs_a_login(client):
    response = client.get("/executions")
    assert response.status_code == 302
    assert response["Location"].startswith("/login")


def test_list_shows_rows_as_links_with_status_steps_and_cost(client_in):
    execution = DagExecutionFactory(
        dag=DagFactory(dag_title="Weekly digest"),
        status="completed",
        completed_tasks=2,
        total_tasks=2,
        total_cost_usd=Decimal("0.0123"),
        duration_ms=4200,
        started_at=now(),
    )
    body = client_in.get("/executions").content.decode()
    assert f'href="/executions/{execution.id}"' in body
    assert "Weekly digest" in body
    assert "2/2" in body
    assert "$0.0123" in body
    assert "4.2 s" in body
    assert 'data-status="completed"' in body


def test_list_searches_filters_and_sorts(client_in):
    a = DagExecutionFactory(dag=DagFactory(dag_title="Alpha news"), status="completed")
    b = DagExecutionFactory(dag=DagFactory(dag_title="Beta prices"), status="failed")
    c = DagExecutionFactory(dag=DagFactory(dag_title="Alpha weather"), status="failed")

    def ids(query: str) -> list[str]:
        body = client_in.get(f"/executions?{query}").content.decode()
        return re.findall(r'data-execution-id="([^"]+)"', body)

    assert set(ids("q=alpha")) == {a.id, c.id}
    assert ids("status=failed&sort=title") == [c.id, b.id]
    assert ids("q=alpha&status=failed") == [c.id]
    assert ids(f"q={b.id}") == [b.id]
    assert set(ids("status=nonsense&sort=nonsense")) == {a.id, b.id, c.id}
    assert "No execution matches" in client_in.get("/executions?q=zzz").content.decode()


def test_list_paginates(client_in):
    DagExecutionFactory.create_batch(30)
    first = client_in.get("/executions").content.decode()
    second = client_in.get("/executions?page=2").content.decode()
    assert first.count("data-execution-id=") == 25
    assert second.count("data-execution-id=") == 5
    assert "26\u201330 of 30" in second


def _count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_list_runs_a_constant_number_of_queries(client_in):
    DagExecutionFactory.create_batch(5)
    few = _count_queries(client_in, "/executions")
    DagExecutionFactory.create_batch(45)
    many = _count_queries(client_in, "/executions")
    assert few == many
    assert _count_queries(client_in, "/executions?q=Report&status=pending&sort=-cost") == many


# --- detail --------------------------------------------------------------------------------------
def test_detail_shows_steps_diagram_progress_and_stream_settings(client_in):
    execution = make_execution()
    emit_execution_event(
        execution_id=execution.id,
        type=SUBSTEP_COMPLETED,
        payload={"subStepId": "001", "durationMs": 5, "result": "first result"},
    )
    response = client_in.get(f"/executions/{execution.id}")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-step="001" data-status="completed"' in body
    assert 'data-step="002" data-status="pending"' in body
    assert 'id="dag-node-001" data-task-id="001" data-status="completed"' in body
    assert f'data-events-url="/api/v1/dag-executions/{execution.id}/events"' in body
    assert 'data-last-event-id="1"' in body
    assert '1 of <span data-live="total">3</span> steps done' in body.replace("</strong>", "")
    assert "substep.completed" in body  # the event log
    meta = re.search(r'<script id="status-meta" type="application/json">(.*?)</script>', body)
    assert json.loads(meta.group(1))["completed"] == ["✓", "Completed"]


def test_detail_lists_no_event_past_the_id_its_stream_resumes_from(client_in):
    """An event committed after the page read the execution (here: its counter set back, as
    the page saw it) is left to the stream, which resumes after that id: listing it as well
    showed it twice."""
    execution = make_execution()
    for task_id in ("001", "002"):
        emit_execution_event(
            execution_id=execution.id,
            type=SUBSTEP_COMPLETED,
            payload={"subStepId": task_id, "durationMs": 5, "result": "r"},
        )
    DagExecution.objects.filter(pk=execution.id).update(last_event_seq=1)
    body = client_in.get(f"/executions/{execution.id}").content.decode()
    assert 'data-last-event-id="1"' in body
    assert re.findall(r'data-seq="(\d+)"', body) == ["1"]


def test_detail_of_an_unknown_execution_is_a_404_page(client_in):
    response = client_in.get("/executions/dag-exec_nope")
    assert response.status_code == 404
    assert b"<html" in response.content


def test_detail_tabs_are_deep_links(client_in):
    execution = make_execution(status="completed")
    body = client_in.get(f"/executions/{execution.id}?tab=costs").content.decode()
    assert 'data-tab="costs" aria-current="page"' in body
    assert 'data-tab-panel="costs" aria-label="Costs">' in body
    assert 'data-tab-panel="progress" aria-label="Progress" hidden>' in body
    unknown = client_in.get(f"/executions/{execution.id}?tab=<x>").content.decode()
    assert 'data-tab="progress" aria-current="page"' in unknown


def test_detail_renders_the_result_as_sanitized_markdown(client_in):
    execution = make_execution(
        status="completed",
        final_result=f"# Report\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n{HOSTILE}\n\n"
        "[bad](javascript:alert(1))\n\n```python\nprint('hi')\n```",
    )
    body = client_in.get(f"/executions/{execution.id}?tab=result").content.decode()
    result = body.split('data-testid="execution-result">', 1)[1].split("</article>", 1)[0]
    assert "<h1>Report</h1>" in result
    assert "<table>" in result
    assert '<span class="nb">print</span>' in result
    assert "<script" not in result and "<img" not in result
    assert "&lt;script&gt;" in result
    assert "javascript:" not in result.replace("[bad](javascript:alert(1))", "")


def test_hostile_titles_descriptions_and_events_are_escaped(client_in):
    execution = make_execution(dag=DagFactory(dag_title=HOSTILE))
    SubStep.objects.filter(execution=execution, task_id="002").update(description=HOSTILE)
    emit_execution_event(
        execution_id=execution.id,
        type=TOOL_PROGRESS,
        payload={"toolName": "webSearch", "message": HOSTILE, "subStepId": "002"},
    )
    body = client_in.get(f"/executions/{execution.id}").content.decode()
    assert "<script>alert" not in body
    assert "<img src=x" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_running_steps_show_their_latest_tool_progress(client_in):
    execution = make_execution()
    SubStep.objects.filter(execution=execution, task_id="002").update(status="running")
    for index in range(5):
        emit_execution_event(
            execution_id=execution.id,
            type=TOOL_PROGRESS,
            payload={"toolName": "fetchURLs", "message": f"page {index}", "subStepId": "002"},
        )
    body = client_in.get(f"/executions/{execution.id}").content.decode()
    step = body.split('data-step="002"', 1)[1].split("</li>\n", 4)
    progress = "".join(step)
    assert "fetchURLs: page 4" in progress and "fetchURLs: page 2" in progress
    assert "fetchURLs: page 1" not in progress


def test_detail_actions_follow_the_status(client_in):
    running = make_execution(status="running")
    body = client_in.get(f"/executions/{running.id}").content.decode()
    assert f'action="/executions/{running.id}/cancel"' in body
    assert f'action="/executions/{running.id}/resume"' not in body
    suspended = make_execution(status="suspended")
    body = client_in.get(f"/executions/{suspended.id}").content.decode()
    assert f'action="/executions/{suspended.id}/resume"' in body
    assert 'data-confirm="Delete this execution' in body


def test_step_dialog_is_rendered_for_a_deep_link(client_in):
    execution = make_execution()
    SubStep.objects.filter(execution=execution, task_id="001").update(
        result=json.dumps({"items": [1, 2]}),
        usage={"promptTokens": 10, "completionTokens": 5, "totalTokens": 15},
        cost_usd=Decimal("0.0005"),
        duration_ms=1500,
    )
    body = client_in.get(f"/executions/{execution.id}?step=001").content.decode()
    dialog = body.split('<dialog id="step-dialog"', 1)[1].split("</dialog>", 1)[0]
    assert 'data-step="001" open' in dialog
    assert 'class="language-json"' in dialog
    assert "<strong>15</strong>" in dialog
    assert "$0.0005" in dialog
    assert "1.5 s" in dialog


def test_step_partial_shows_dependencies_inputs_and_markdown_result(client_in):
    execution = make_execution()
    SubStep.objects.filter(execution=execution, task_id="002").update(
        result=f"**bold** {HOSTILE}", status="completed"
    )
    response = client_in.get(f"/executions/{execution.id}/steps/002")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<strong>bold</strong>" in body
    assert "<script" not in body
    assert 'data-step-link="001"' in body
    assert "first result" in body  # the resolved input from the dependency
    assert client_in.get(f"/executions/{execution.id}/steps/999").status_code == 404


def test_live_partial_has_every_swappable_part(client_in):
    execution = make_execution(status="completed", final_result="Done **well**")
    body = client_in.get(f"/executions/{execution.id}/live").content.decode()
    for part in (
        "execution-state",
        "execution-actions",
        "execution-progress",
        "execution-steps",
        "execution-result",
        "execution-artifacts",
        "execution-costs",
    ):
        assert re.search(rf'id="{part}"[^>]*data-swap', body), part
    assert "<strong>well</strong>" in body
    assert 'data-status="completed"' in body


def test_detail_and_partial_queries_do_not_grow_with_steps(client_in):
    small = make_execution(steps=3)
    large = make_execution(steps=40)
    for suffix in ("", "/live"):
        assert _count_queries(client_in, f"/executions/{small.id}{suffix}") == _count_queries(
            client_in, f"/executions/{large.id}{suffix}"
        )


# --- artifacts -----------------------------------------------------------------------------------
@pytest.fixture
def artifacts_dir(settings, tmp_path):
    settings.ARTIFACTS_DIR = str(tmp_path)
    return tmp_path


def test_artifacts_written_by_the_execution_can_be_viewed_and_downloaded(client_in, artifacts_dir):
    (artifacts_dir / "report.md").write_text(f"# Findings\n\n{HOSTILE}\n")
    (artifacts_dir / "other.md").write_text("not this execution's")
    execution = make_execution(status="completed")
    SubStepFactory(
        execution=execution,
        task_id="004",
        tool_or_prompt_name="writeFile",
        action_type="tool",
        status="completed",
        completed_at=now(),
        result=json.dumps({"path": "report.md", "size": 40}),
    )
    body = client_in.get(f"/executions/{execution.id}?tab=artifacts").content.decode()
    assert f'href="/executions/{execution.id}/artifacts/report.md"' in body
    assert "Artifacts (1)" in body

    view = client_in.get(f"/executions/{execution.id}/artifacts/report.md").content.decode()
    assert "<h1>Findings</h1>" in view
    assert "<script" not in view.split('data-testid="artifact-content"', 1)[1]

    download = client_in.get(f"/executions/{execution.id}/artifacts/report.md?download=1")
    assert download["Content-Disposition"] == 'attachment; filename="report.md"'
    assert download.content.startswith(b"# Findings")

    assert client_in.get(f"/executions/{execution.id}/artifacts/other.md").status_code == 404
    assert client_in.get(f"/executions/{execution.id}/artifacts/../etc/passwd").status_code == 404


# --- actions -------------------------------------------------------------------------------------
def test_actions_are_post_only_and_need_csrf(client_in):
    execution = make_execution(status="suspended")
    assert client_in.get(f"/executions/{execution.id}/resume").status_code == 405
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(UserFactory())
    assert strict.post(f"/executions/{execution.id}/delete").status_code == 403
    assert DagExecution.objects.filter(pk=execution.id).exists()


def test_cancel_a_finished_execution_explains_why_not(client_in):
    execution = make_execution(status="completed")
    response = client_in.post(f"/executions/{execution.id}/cancel", follow=True)
    assert "Cannot cancel execution with status" in response.content.decode()
    assert DagExecution.objects.get(pk=execution.id).status == "completed"


def test_cancel_a_running_execution(client_in):
    execution = make_execution(status="running")
    response = client_in.post(f"/executions/{execution.id}/cancel")
    assert response.status_code == 302
    assert response["Location"] == reverse("executions:detail", args=[execution.id])
    assert DagExecution.objects.get(pk=execution.id).status == "cancelled"


def test_delete_returns_to_the_dag(client_in):
    execution = make_execution(status="completed")
    response = client_in.post(f"/executions/{execution.id}/delete")
    assert response["Location"] == reverse("dags:detail", args=[execution.dag_id])
    assert not DagExecution.objects.filter(pk=execution.id).exists()
    assert client_in.post(f"/executions/{execution.id}/delete").status_code == 404


def test_synthesis_row_is_last_and_not_counted(client_in):
    execution = make_execution(steps=2)
    SubStepFactory(execution=execution, task_id=SYNTHESIS_TASK_ID, description="")
    body = client_in.get(f"/executions/{execution.id}").content.decode()
    order = re.findall(r'data-step="([^"]+)"', body)
    assert order == ["001", "002", SYNTHESIS_TASK_ID]
    assert 'data-task-id="__SYNTHESIS__"' not in body  # not a node of the plan's graph


def test_people_see_only_their_own_executions(client):
    mine_owner = UserFactory(username="mira")
    client.force_login(mine_owner)
    mine = make_execution(dag=DagFactory(owner=mine_owner, dag_title="Mine"))
    theirs = make_execution(dag=DagFactory(dag_title="Theirs"))  # the factories' default owner
    body = client.get("/executions").content.decode()
    assert mine.id in body and theirs.id not in body
    assert client.get(f"/executions/{theirs.id}").status_code == 404
    assert client.get(f"/executions/{theirs.id}/live").status_code == 404
    assert client.get(f"/executions/{theirs.id}/steps/001").status_code == 404
    assert client.post(f"/executions/{theirs.id}/delete").status_code == 404
    assert DagExecution.objects.filter(pk=theirs.id).exists()
    assert client.get(f"/executions/{mine.id}").status_code == 200
