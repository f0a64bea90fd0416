"""A page left open on a stopped execution follows a resume started elsewhere (here: the API),
in Chromium against real web and worker processes."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from dags.execution.services import execution_launch
from dags.models import DagExecution
from dags.tests.planning_helpers import plan, task
from tests.browser.helpers import screenshot
from tests.factories import AgentFactory, DagFactory, TokenFactory
from tests.fakes.openai_server import ChatReply
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# Records each step's statuses as the open page shows them (from the first paint on).
STATUS_RECORDER = """
(() => {
  window.__pageId = Math.random();
  window.__steps = [];
  new MutationObserver((mutations) => {
    for (const m of mutations) {
      const el = m.target;
      if (el instanceof Element && el.hasAttribute('data-step')) {
        window.__steps.push([el.getAttribute('data-step'), el.getAttribute('data-status')]);
      }
      for (const node of m.addedNodes || []) {
        if (node instanceof Element) {
          node.querySelectorAll('[data-step]').forEach((s) =>
            window.__steps.push([s.getAttribute('data-step'), s.getAttribute('data-status')]));
        }
      }
    }
  }).observe(document, {subtree: true, childList: true, attributes: true,
                        attributeFilter: ['data-status']});
})();
"""


class FailingOnce:
    """Replies to every step, except that "Analyse" fails while `fail` is set."""

    def __init__(self) -> None:
        self.fail = True

    def __call__(self, request: dict) -> ChatReply:
        last = [m for m in request["messages"] if m["role"] == "user"][-1]["content"]
        if self.fail and "Analyse" in last:
            return ChatReply(status=400, error_message="the model refused: bad request")
        return ChatReply(content="Findings.", delay=0.3, prompt_tokens=10, completion_tokens=5)


def inference(task_id: str, description: str, deps: list[str] | None = None) -> dict:
    step = task(
        task_id,
        tool="InferenceAgent",
        params={"prompt": description},
        deps=deps,
        action="inference",
    )
    step["description"] = description
    return step


def test_an_open_page_on_a_stopped_execution_follows_a_resume_through_the_api(
    logged_in_page, browser_events, worker, web_server, fake_llm, ui_user
):
    page = logged_in_page
    page.add_init_script(STATUS_RECORDER)
    AgentFactory(name="InferenceAgent", prompt_template="You are careful.", active=True)
    responder = FailingOnce()
    fake_llm.responder = responder
    dag = DagFactory(
        result=plan(
            inference("t1", "Collect the facts"),
            inference("t2", "Analyse the facts", ["t1"]),
            inference("t3", "Write it up", ["t2"]),
        )
    )
    execution = execution_launch(dag=dag)
    wait_for(
        lambda: DagExecution.objects.get(pk=execution.id).status == "suspended",
        timeout=60,
        message="the execution stopping on its failing step",
    )

    # The page is opened on the stopped execution: it keeps its stream open.
    page.goto(f"/executions/{execution.id}")
    page_id = page.evaluate("window.__pageId")
    expect(page.locator("[data-step='t2']")).to_have_attribute("data-status", "failed")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "idle")
    screenshot(page, "execution-stopped-following", full_page=False)

    # Resumed elsewhere: through the API, with the owner's token.
    responder.fail = False
    request = urllib.request.Request(
        f"{web_server.url}/api/v1/resume-dag/{execution.id}",
        data=b"",
        method="POST",
        headers={"Authorization": f"Token {TokenFactory(user=ui_user).key}"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        assert response.status == 202, json.loads(response.read())

    expect(page.locator("[data-live=status] .badge")).to_have_attribute(
        "data-status", "completed", timeout=60_000
    )
    for task_id in ("t1", "t2", "t3"):
        expect(page.locator(f"[data-step='{task_id}']")).to_have_attribute(
            "data-status", "completed"
        )
        expect(page.locator(f"#dag-node-{task_id}")).to_have_attribute("data-status", "completed")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "finished")
    assert page.evaluate("window.__pageId") == page_id, "the page reloaded"
    # t2 and t3 went green on the open page, after being seen unfinished there.
    seen = [tuple(row) for row in page.evaluate("window.__steps")]
    for task_id in ("t2", "t3"):
        statuses = [status for step, status in seen if step == task_id]
        assert "completed" in statuses, (task_id, statuses)
    assert re.search(r"Finished", page.locator("#live-indicator").inner_text())
    screenshot(page, "execution-resumed-elsewhere", full_page=False)
    browser_events.assert_quiet()
