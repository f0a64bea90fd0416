"""Goal runs end to end: the API trigger, a real Celery worker, the scripted chat server, real
tools in a temporary artifacts folder and a local webhook receiver."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from artifacts.models import Artifact
from goals.models import Memory
from runs.conversation import FINAL_SUMMARY_REQUEST
from runs.models import Output, Run, RunEvent
from runs.notify import run_webhook_deliver
from tests.factories import AgentFactory, GoalFactory
from tests.fakes.http import Reply
from tests.fakes.openai_server import ChatReply, ToolCall
from tests.waiting import wait_for
from tools.webhooks import idempotency_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

SECRET = "webhook-test-secret"


def wait_run(run_id: str, timeout: float = 30.0) -> Run:
    wait_for(
        lambda: Run.objects.filter(pk=run_id, status__in=["completed", "failed"]).exists(),
        timeout,
    )
    return Run.objects.get(pk=run_id)


def offered_tools(request: dict) -> list[str]:
    return [tool["function"]["name"] for tool in request.get("tools") or []]


@pytest.fixture
def run_settings(settings, artifacts_dir):
    settings.TOOLS_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_SECRET = SECRET
    settings.TOOLS_RETRY_BACKOFF_SECONDS = 0.05
    settings.MAX_CONCURRENT_RUNS = 3
    return settings


@pytest.fixture
def agent(db):
    return AgentFactory(
        name="defaultAgent",
        active=True,
        prompt_template=(
            "Objective: {{objective}}\nTools:\n{{toolsList}}\nSteps left: {{stepsRemaining}}\n"
            "Constraints:\n{{constraints}}\nMemory: {{workingMemory}}"
        ),
    )


def trigger(api, goal) -> str:
    response = api.post(f"/api/v1/goals/{goal.id}/run", {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["message"] == "Run triggered"
    return body["runId"]


def test_write_file_then_finish_records_everything_and_signs_the_webhook(
    api, fake_llm, celery_worker_thread, run_settings, artifacts_dir, http_server, agent
):
    http_server.route("POST", "/hook", Reply(200, {"ok": True}))
    goal = GoalFactory(
        agent=agent,
        params={"allowedTools": ["writeFile"], "constraints": ["Be brief", "Use Markdown"]},
        webhook_url=http_server.url("/hook"),
    )
    fake_llm.enqueue(
        ChatReply(
            content="I will save the notes.",
            tool_calls=[
                ToolCall("writeFile", {"path": "notes/result.md", "content": "# Solar\nok"}, "c1")
            ],
            cost=0.001,
        ),
        ChatReply(content="Saved the notes to notes/result.md.", cost=0.002),
    )

    run = wait_run(trigger(api, goal))
    # The webhook goes out right after the run is marked completed.
    wait_for(lambda: run.outputs.filter(kind="webhook").exists())

    assert run.status == "completed", run.error
    assert (artifacts_dir / "notes" / "result.md").read_text() == "# Solar\nok"
    steps = list(run.steps.order_by("step_no"))
    assert [s.step_no for s in steps] == [1, 2]
    assert steps[0].tool_name == "writeFile"
    assert steps[0].tool_input == {"path": "notes/result.md", "content": "# Solar\nok"}
    assert steps[0].tool_calls[0]["status"] == "ok"
    assert steps[0].thought == "I will save the notes."
    assert "notes/result.md" in steps[0].observation
    assert steps[1].tool_name is None and steps[1].tool_calls == []
    summary = "Saved the notes to notes/result.md."
    assert run.working_memory["summary"] == summary
    assert run.working_memory["step_1_writeFile_0"]["path"] == "notes/result.md"
    assert run.steps_executed == 2
    assert run.usage == {"promptTokens": 20, "completionTokens": 10, "totalTokens": 30}
    assert str(run.cost_usd.normalize()) == "0.003"
    kinds = sorted(run.outputs.values_list("kind", flat=True))
    assert kinds == ["file", "summary", "webhook"]
    assert run.outputs.get(kind="file").path_or_payload == "notes/result.md"
    artifact = Artifact.objects.get(path="notes/result.md")
    assert (artifact.owner, artifact.run_id, artifact.size) == (goal.owner, run.id, 10)
    assert api.get("/api/v1/artifacts").json() == ["notes/result.md"]
    assert Memory.objects.get(goal=goal, type="note").content == summary

    # The model saw only the allowed tool, the constraints, and the tool result as a `tool`
    # message answering its call.
    first, second = fake_llm.requests
    assert offered_tools(first) == ["writeFile"]
    assert "- Be brief\n- Use Markdown" in first["messages"][0]["content"]
    assert second["messages"][-2]["tool_calls"][0]["id"] == "c1"
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "c1"
    assert json.loads(tool_message["content"])["path"] == "notes/result.md"

    # The signed webhook.
    (hook,) = http_server.requests
    expected = hmac.new(SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["X-AsyncAgent-Signature"] == f"sha256={expected}"
    body = hook.json()
    assert body["runId"] == run.id and body["goalId"] == goal.id
    assert body["status"] == "completed" and body["summary"] == summary
    assert body["outputs"] == [{"kind": "file", "pathOrPayload": "notes/result.md"}]
    assert json.loads(run.outputs.get(kind="webhook").path_or_payload)["delivered"] is True
    assert hook.headers["Idempotency-Key"] == idempotency_key("run", run.id, "run.finished")

    # A redelivered webhook task finds it delivered and sends nothing.
    assert run_webhook_deliver(run_id=run.id) is None
    assert len(http_server.requests) == 1

    events = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("type", flat=True))
    assert events == ["run.started", "run.step", "run.step", "run.completed"]

    # A later run of the goal is given the earlier run's summary.
    fake_llm.enqueue(ChatReply(content="Nothing new."))
    wait_run(trigger(api, goal))
    assert summary in fake_llm.requests[-1]["messages"][1]["content"]


def test_a_call_to_a_tool_outside_allowed_tools_is_refused_and_recorded(
    api, fake_llm, celery_worker_thread, run_settings, artifacts_dir, agent
):
    goal = GoalFactory(agent=agent, params={"allowedTools": ["readFile"]})
    fake_llm.enqueue(
        ChatReply(
            content="",
            tool_calls=[ToolCall("writeFile", {"path": "x.txt", "content": "no"}, "bad")],
        ),
        ChatReply(content="Could not write the file."),
    )

    run = wait_run(trigger(api, goal))

    assert run.status == "completed"
    assert not (artifacts_dir / "x.txt").exists()
    step = run.steps.get(step_no=1)
    assert step.tool_calls[0]["status"] == "refused"
    assert "not allowed" in step.error
    assert not run.outputs.filter(kind="file").exists()
    refusal = fake_llm.requests[1]["messages"][-1]
    assert refusal["role"] == "tool" and refusal["tool_call_id"] == "bad"
    assert "not allowed for this goal" in refusal["content"]
    assert offered_tools(fake_llm.requests[0]) == ["readFile"]


def test_budget_exhaustion_ends_with_a_summary_call_without_tools(
    api, fake_llm, celery_worker_thread, run_settings, artifacts_dir, agent
):
    goal = GoalFactory(agent=agent, params={"stepBudget": 2, "allowedTools": ["readFile"]})

    def reply(request: dict) -> ChatReply:
        if not request.get("tools"):
            return ChatReply(content="Ran out of steps; found nothing.")
        return ChatReply(content="Looking.", tool_calls=[ToolCall("readFile", {"path": "a.txt"})])

    fake_llm.responder = reply

    run = wait_run(trigger(api, goal))

    assert run.status == "completed"
    assert run.steps_executed == 2 == run.steps.count()
    assert all(step.tool_calls[0]["status"] == "error" for step in run.steps.all())
    assert run.working_memory["summary"] == "Ran out of steps; found nothing."
    assert run.working_memory["stopReason"] == "budget_exhausted"
    assert len(fake_llm.requests) == 3
    last = fake_llm.requests[-1]
    assert "tools" not in last
    assert last["messages"][-1] == {"role": "user", "content": FINAL_SUMMARY_REQUEST}
    assert "Steps left: 1" in fake_llm.requests[1]["messages"][0]["content"]
    assert "Steps left: 2" in fake_llm.requests[0]["messages"][0]["content"]


def test_an_llm_failure_fails_the_run_with_the_error_and_reports_it(
    api, fake_llm, celery_worker_thread, run_settings, http_server, agent
):
    http_server.route("POST", "/hook", Reply(204))
    goal = GoalFactory(agent=agent, webhook_url=http_server.url("/hook"))
    fake_llm.default = ChatReply(status=401, error_message="Incorrect API key provided")

    run = wait_run(trigger(api, goal))

    assert run.status == "failed"
    assert "authentication failed" in run.error and "Incorrect API key" in run.error
    assert run.ended_at is not None
    assert run.steps.count() == 0
    wait_for(lambda: len(http_server.requests) == 1)
    body = http_server.requests[0].json()
    assert body["status"] == "failed" and body["error"] == run.error and body["summary"] is None
    events = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("type", flat=True))
    assert events == ["run.started", "run.failed"]


def test_run_outputs_endpoint_lists_what_the_run_produced(
    api, fake_llm, celery_worker_thread, run_settings, agent
):
    goal = GoalFactory(agent=agent)
    fake_llm.enqueue(ChatReply(content="All done."))

    run = wait_run(trigger(api, goal))

    body = api.get(f"/api/v1/runs/{run.id}/outputs").json()
    assert [(o["kind"], o["pathOrPayload"]) for o in body] == [("summary", "All done.")]
    assert list(body[0]) == ["id", "runId", "kind", "pathOrPayload", "createdAt"]
    assert Output.objects.filter(run=run).count() == 1
