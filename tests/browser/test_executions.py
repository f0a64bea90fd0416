"""The execution pages in Chromium against real web and worker processes: the full journey
(new DAG → clarify → plan → execute → watch it live → inspect → result → artifact → failure →
resume → cancel), a stream that drops when the web process dies, hostile content, keyboard use
and accessibility."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils.timezone import now
from playwright.sync_api import expect

from artifacts.services import artifact_record_write
from dags.models import DagExecution, ExecutionEvent, SubStep
from dags.tests.planning_helpers import PLANNER_TEMPLATE, plan, reply, task
from tests.browser.helpers import assert_accessible, screenshot
from tests.factories import AgentFactory, DagExecutionFactory, DagFactory, SubStepFactory
from tests.fakes.openai_server import ChatReply
from tests.processes import WebServer, worker_process
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = (
    "<script>alert('xss')</script><img src=x onerror=\"alert('img')\">"
    "<iframe src=\"javascript:alert('frame')\"></iframe>[link](javascript:alert('link'))"
)
REPORT = (
    "# Battery report\n\n| Maker | Cells |\n|---|---:|\n| Acme | 42 |\n\n"
    "```python\nprint('charged')\n```\n\n" + HOSTILE + "\n"
)
# Records every status a step or diagram node shows, in order, from the first paint on: the
# journey asserts that steps were seen changing on the open page, not only their final state.
STATUS_RECORDER = """
(() => {
  window.__statusLog = [];
  window.__pageId = Math.random();
  const record = (el) => {
    if (!(el instanceof Element)) return;
    const id = el.getAttribute('data-step') || el.getAttribute('data-task-id');
    const kind = el.hasAttribute('data-step') ? 'step' : 'node';
    if (id && el.hasAttribute('data-status')) {
      window.__statusLog.push([kind, id, el.getAttribute('data-status'), performance.now()]);
    }
  };
  new MutationObserver((mutations) => {
    for (const m of mutations) {
      if (m.type === 'attributes') record(m.target);
      for (const node of m.addedNodes || []) {
        if (node instanceof Element) {
          record(node);
          node.querySelectorAll('[data-step],[data-task-id]').forEach(record);
        }
      }
    }
  }).observe(document, {subtree: true, childList: true, attributes: true,
                        attributeFilter: ['data-status']});
  window.__indicatorLog = [];
  new MutationObserver((mutations) => {
    for (const m of mutations) {
      if (m.target.id === 'live-indicator') {
        window.__indicatorLog.push(m.target.getAttribute('data-state'));
      }
    }
  }).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-state']});
})();
"""


# --- processes with a shared artifacts folder ----------------------------------------------------
@pytest.fixture(scope="module")
def artifacts_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def web_server(django_db_setup, fake_llm_server, tmp_path_factory, artifacts_root):
    log = tmp_path_factory.mktemp("web") / "daphne.log"
    server = WebServer(
        log, fake_llm=fake_llm_server, extra_env={"ARTIFACTS_DIR": str(artifacts_root)}
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def worker(django_db_setup, fake_llm_server, artifacts_root) -> Iterator[subprocess.Popen]:
    from config.celery import app

    process = worker_process(
        fake_llm_server,
        extra_env={"ARTIFACTS_DIR": str(artifacts_root), "LLM_MAX_RETRIES": "0"},
    )
    try:
        wait_for(
            lambda: bool(app.control.ping(timeout=0.5)),
            timeout=60,
            message="a Celery worker answering pings",
        )
        yield process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


# --- a scripted model for planning and execution -------------------------------------------------
class Script:
    """Answers planner, step and synthesis requests; switches flip failure and slowness."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clarify_first = False
        self.plan: dict[str, Any] = journey_plan()
        self.fail = False
        self.step_delay = 0.6
        self.planner_calls = 0

    def __call__(self, request: dict[str, Any]) -> ChatReply:
        system = request["messages"][0]["content"] if request["messages"] else ""
        last = [m for m in request["messages"] if m["role"] == "user"][-1]["content"]
        if system.startswith("PLANNER"):
            with self.lock:
                self.planner_calls += 1
                ask = self.clarify_first and self.planner_calls == 1
            if ask:
                return reply(
                    plan(
                        sub_tasks=[],
                        clarification_needed=True,
                        clarification_query="Which market should the report cover?",
                    )
                )
            return reply(self.plan)
        if "## Synthesis plan" in last:
            return ChatReply(content=REPORT, delay=0.3, prompt_tokens=120, completion_tokens=80)
        if self.fail and "Analyse" in last:
            return ChatReply(status=400, error_message="the model refused: bad request")
        return ChatReply(
            content=f"Findings: the market grew. {HOSTILE}",
            delay=self.step_delay,
            prompt_tokens=50,
            completion_tokens=25,
        )


def inference(task_id: str, description: str, deps: list[str] | None = None) -> dict[str, Any]:
    step = task(
        task_id,
        tool="InferenceAgent",
        params={"prompt": description},
        deps=deps,
        action="inference",
    )
    step["description"] = description
    return step


def journey_plan() -> dict[str, Any]:
    return plan(
        inference("t1", "Collect the facts"),
        inference("t2", "Analyse the facts", ["t1"]),
        task(
            "t3",
            tool="writeFile",
            params={"path": "journey-report.md", "content": "<Result from Task t2>"},
            deps=["t2"],
        ),
    )


@pytest.fixture
def script(fake_llm) -> Script:
    AgentFactory(name="DecomposerV8", prompt_template=PLANNER_TEMPLATE, active=True)
    AgentFactory(name="InferenceAgent", prompt_template="You are careful.", active=True)
    scripted = Script()
    fake_llm.responder = scripted
    return scripted


def status_log(page) -> list[tuple[str, str, str, float]]:
    return [tuple(row) for row in page.evaluate("window.__statusLog")]


def seen_before_completed(log, kind: str, task_id: str) -> list[str]:
    statuses = [status for k, i, status, _ in log if k == kind and i == task_id]
    assert "completed" in statuses, (task_id, statuses)
    return statuses[: statuses.index("completed")]


# --- seeded pages: rendering, hostile content, keyboard, accessibility ---------------------------
def seeded_execution(artifacts_root: Path) -> DagExecution:
    (artifacts_root / "notes.md").write_text(f"# Notes\n\n{HOSTILE}\n")
    dag = DagFactory(dag_title=f"Hostile {HOSTILE}", planning_total_cost_usd=Decimal("0.002"))
    execution = DagExecutionFactory(
        dag=dag,
        status="completed",
        total_tasks=3,
        completed_tasks=3,
        started_at=now(),
        completed_at=now(),
        duration_ms=8300,
        final_result=REPORT,
        total_cost_usd=Decimal("0.0042"),
        total_usage={"promptTokens": 300, "completionTokens": 120, "totalTokens": 420},
    )
    for index, (description, deps) in enumerate(
        [("Collect the facts", ["none"]), (HOSTILE, ["001"]), ("Write notes", ["002"])], start=1
    ):
        SubStepFactory(
            execution=execution,
            task_id=f"{index:03d}",
            description=description,
            dependencies=deps,
            status="completed",
            started_at=now(),
            completed_at=now(),
            duration_ms=1200 * index,
            result=f"Step {index} says **hello** {HOSTILE}",
            usage={"promptTokens": 100, "completionTokens": 40, "totalTokens": 140},
            cost_usd=Decimal("0.0014"),
        )
    SubStep.objects.filter(execution=execution, task_id="003").update(
        action_type="tool",
        tool_or_prompt_name="writeFile",
        result=json.dumps({"path": "notes.md", "size": 80}),
    )
    SubStepFactory(execution=execution, task_id="__SYNTHESIS__", description="", status="completed")
    # What the writeFile step records when it runs: the file is the execution owner's.
    artifact_record_write(
        path="notes.md",
        size=(artifacts_root / "notes.md").stat().st_size,
        owner_id=execution.owner_id,
        execution_id=execution.id,
    )
    return execution


def test_execution_pages_show_hostile_content_as_text(
    logged_in_page, browser_events, artifacts_root
):
    page = logged_in_page
    execution = seeded_execution(artifacts_root)
    page.goto(f"/executions/{execution.id}?tab=result")
    result = page.get_by_test_id("execution-result")
    expect(result.get_by_role("heading", name="Battery report")).to_be_visible()
    expect(result.locator("table td").first).to_have_text("Acme")
    expect(result.locator("pre.highlight")).to_contain_text("print('charged')")
    expect(result).to_contain_text("<script>alert('xss')</script>")
    assert result.locator("script, iframe, img").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    expect(page.locator(".page-head h1")).to_contain_text("<script>")
    screenshot(page, "execution-result")
    assert_accessible(page, "execution result")

    # Every tab is a link of its own and passes the accessibility check.
    for tab, name in [
        ("progress", "Progress"),
        ("graph", "Graph"),
        ("artifacts", "Artifacts"),
        ("costs", "Costs"),
        ("events", "Events"),
        ("details", "Details"),
    ]:
        page.get_by_role("navigation", name="Execution sections").get_by_role(
            "link", name=re.compile(f"^{name}")
        ).click()
        expect(page).to_have_url(re.compile(f"tab={tab}"))
        expect(page.locator(f"[data-tab-panel='{tab}']")).to_be_visible()
        assert_accessible(page, f"execution {tab}")
        screenshot(page, f"execution-{tab}")
    page.goto(f"/executions/{execution.id}?tab=costs")
    expect(page.get_by_test_id("execution-total-cost")).to_have_text("$0.0062")

    # The step dialog: keyboard, Esc, deep link, hostile result as text.
    page.goto(f"/executions/{execution.id}")
    link = page.locator("[data-step-link='002']").first
    link.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#step-dialog")
    expect(dialog).to_be_visible()
    expect(page).to_have_url(re.compile(r"step=002"))
    expect(dialog.get_by_test_id("step-result").locator("strong")).to_have_text("hello")
    expect(dialog.get_by_test_id("step-result")).to_contain_text("<script>alert('xss')</script>")
    assert dialog.locator("script, iframe, img").count() == 0
    assert_accessible(page, "step dialog")
    screenshot(page, "execution-step-dialog", full_page=False)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(link).to_be_focused()
    expect(page).not_to_have_url(re.compile(r"step="))
    page.goto(f"/executions/{execution.id}?step=001")
    expect(page.locator("#step-dialog")).to_be_visible()
    expect(page.locator("#step-dialog h2")).to_contain_text("001")

    # The artifact: rendered as Markdown with hostile text inert, and downloadable.
    page.goto(f"/executions/{execution.id}?tab=artifacts")
    page.get_by_role("link", name="notes.md", exact=True).click()
    content = page.get_by_test_id("artifact-content")
    expect(content.get_by_role("heading", name="Notes")).to_be_visible()
    expect(content).to_contain_text("<script>alert('xss')</script>")
    assert content.locator("script, iframe, img").count() == 0
    assert_accessible(page, "artifact")
    screenshot(page, "execution-artifact")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert Path(download.value.path()).read_text().startswith("# Notes")
    browser_events.assert_quiet()


def test_execution_list_searches_filters_and_links_by_keyboard(logged_in_page, browser_events):
    page = logged_in_page
    for index in range(3):
        DagExecutionFactory(
            dag=DagFactory(dag_title=f"Market report {index}"),
            status=["completed", "failed", "running"][index],
            total_tasks=4,
            completed_tasks=index + 1,
            started_at=now(),
            total_cost_usd=Decimal("0.01") * index,
        )
    hostile = DagExecutionFactory(dag=DagFactory(dag_title=HOSTILE), status="suspended")
    page.goto("/executions")
    expect(page.locator("tbody tr")).to_have_count(4)
    expect(page.locator(f"tr[data-execution-id='{hostile.id}']")).to_contain_text("<script>")
    assert_accessible(page, "execution list")
    screenshot(page, "execution-list")

    page.get_by_label("Search").fill("market")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("Market report 1")

    # The row's title is a real link, reachable with the keyboard.
    link = page.get_by_role("link", name="Market report 1")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.textContent") == (
            "Market report 1"
        ):
            break
    expect(link).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".page-head h1")).to_have_text("Market report 1")
    browser_events.assert_quiet()


# --- the journey, live ---------------------------------------------------------------------------
def open_live(page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#live-indicator")).to_have_attribute(
        "data-state", re.compile("live|finished")
    )


def test_journey_plan_clarify_execute_watch_inspect_fail_resume_cancel(
    logged_in_page, browser_events, worker, script, artifacts_root
):
    page = logged_in_page
    page.add_init_script(STATUS_RECORDER)
    script.clarify_first = True

    # New DAG → the planner asks a question → the answer re-plans → the plan is shown.
    page.goto("/dags/new")
    page.get_by_label("What should be done?").fill("Write a report on the battery market")
    page.get_by_role("button", name="Plan", exact=True).click()
    expect(page.get_by_test_id("clarification")).to_contain_text("Which market")
    page.get_by_label("Your answer").fill("Europe")
    page.get_by_role("button", name="Answer and re-plan").click()
    planned = page.get_by_test_id("planned")
    expect(planned).to_contain_text("Collect the facts")

    # Execute → the live execution page; steps turn green without a reload.
    planned.get_by_role("button", name="Execute").click()
    expect(page).to_have_url(re.compile(r"/executions/dag-exec_"))
    page_id = page.evaluate("window.__pageId")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    screenshot(page, "execution-running", full_page=False)
    expect(page.locator("[data-live=status] .badge")).to_have_attribute(
        "data-status", "completed", timeout=60_000
    )
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "finished")
    assert page.evaluate("window.__pageId") == page_id, "the page reloaded"
    log = status_log(page)
    for task_id in ("001", "002", "003"):
        assert seen_before_completed(log, "step", task_id), f"{task_id} was never seen unfinished"
        assert seen_before_completed(log, "node", task_id) is not None
    # 002 was seen running (or pending) while 001 was already completed.
    first_done = next(t for k, i, s, t in log if k == "step" and i == "001" and s == "completed")
    assert any(
        k == "step" and i == "002" and s != "completed" and t >= first_done for k, i, s, t in log
    ) or any(k == "step" and i == "002" and s == "running" for k, i, s, t in log)
    expect(page.locator("[data-live=done]")).to_have_text("3")
    expect(page.locator("[data-live=percent]")).to_have_text("100%")
    expect(page.locator("#dag-node-002")).to_have_attribute("data-status", "completed")
    screenshot(page, "execution-completed")

    # The final result arrived without a reload, rendered and sanitized.
    page.get_by_role("link", name="Result", exact=True).click()
    result = page.get_by_test_id("execution-result")
    expect(result.get_by_role("heading", name="Battery report")).to_be_visible()
    expect(result).to_contain_text("<script>alert('xss')</script>")
    assert result.locator("script, img, iframe").count() == 0

    # A step's details, then the artifact the execution wrote.
    page.get_by_role("link", name="Progress", exact=True).click()
    page.locator("[data-step-link='002']").first.click()
    dialog = page.locator("#step-dialog")
    expect(dialog.get_by_test_id("step-result")).to_contain_text("Findings: the market grew.")
    expect(dialog).to_contain_text("Total tokens")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.get_by_role("navigation", name="Sections").get_by_role(
        "link", name=re.compile("^Artifacts")
    ).click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download journey-report.md").click()
    assert "Findings: the market grew." in Path(download.value.path()).read_text()

    # A failing DAG suspends; resume runs only what did not finish.
    script.fail = True
    script.clarify_first = False
    page.goto("/dags/new")
    page.get_by_label("What should be done?").fill("Another battery report")
    page.get_by_role("button", name="Plan and execute").click()
    expect(page).to_have_url(re.compile(r"/executions/dag-exec_"))
    expect(page.locator("[data-live=status] .badge")).to_have_attribute(
        "data-status", "suspended", timeout=60_000
    )
    expect(page.locator("[data-step='002']")).to_have_attribute("data-status", "failed")
    expect(page.locator("[data-step='002'] [data-step-error]")).to_contain_text("refused")
    expect(page.locator("#dag-node-002")).to_have_attribute("data-status", "failed")
    resume = page.get_by_role("button", name="Resume")
    expect(resume).to_be_visible()  # swapped in when the execution stopped
    screenshot(page, "execution-suspended")
    script.fail = False
    resume.click()
    expect(page.locator(".toast")).to_contain_text("Execution resumed")
    expect(page.locator("[data-live=status] .badge")).to_have_attribute(
        "data-status", "completed", timeout=60_000
    )
    expect(page.locator("[data-step='002']")).to_have_attribute("data-status", "completed")

    # A slow one is cancelled from the page, through the confirmation dialog.
    script.step_delay = 20
    page.goto("/dags/new")
    page.get_by_label("What should be done?").fill("A slow battery report")
    page.get_by_role("button", name="Plan and execute").click()
    expect(page.locator("[data-step='001']")).to_have_attribute("data-status", "running")
    page.get_by_role("button", name="Cancel", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel execution").click()
    expect(page.locator(".toast")).to_contain_text("Execution cancelled")
    expect(page.locator("[data-live=status] .badge")).to_have_attribute("data-status", "cancelled")
    expect(page.locator("[data-step='002']")).to_have_attribute("data-status", "cancelled")
    assert_accessible(page, "cancelled execution")
    browser_events.assert_quiet()


def test_a_dropped_stream_resumes_without_losing_or_repeating_events(
    logged_in_page, browser_events, worker, script, web_server
):
    """The web process dies mid-execution and comes back on the same port: the open page
    reconnects from its last event and ends with every step and every event exactly once."""
    page = logged_in_page
    page.add_init_script(STATUS_RECORDER)
    script.plan = plan(
        inference("t1", "Collect the facts"),
        *[inference(f"t{i}", f"Refine the facts, round {i}", [f"t{i - 1}"]) for i in range(2, 6)],
    )
    script.step_delay = 1.2
    page.goto("/dags/new")
    page.get_by_label("What should be done?").fill("A report that survives a restart")
    page.get_by_role("button", name="Plan and execute").click()
    expect(page).to_have_url(re.compile(r"/executions/dag-exec_"))
    execution_id = page.url.rsplit("/", 1)[-1].split("?")[0]
    expect(page.locator("[data-step='001']")).to_have_attribute("data-status", "completed")

    web_server.kill()
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "reconnecting")
    # Steps go on finishing while nobody streams them.
    wait_for(
        lambda: SubStep.objects.filter(execution_id=execution_id, status="completed").count() >= 3,
        timeout=30,
        message="two more steps finishing while the web process is down",
    )
    web_server.start()

    expect(page.locator("[data-live=status] .badge")).to_have_attribute(
        "data-status", "completed", timeout=60_000
    )
    for index in range(1, 6):
        expect(page.locator(f"[data-step='{index:03d}']")).to_have_attribute(
            "data-status", "completed"
        )
        expect(page.locator(f"#dag-node-{index:03d}")).to_have_attribute("data-status", "completed")
    expect(page.locator("[data-live=done]")).to_have_text("5")
    stored = list(
        ExecutionEvent.objects.filter(execution_id=execution_id)
        .order_by("seq")
        .values_list("seq", flat=True)
    )
    shown = [
        int(seq)
        for seq in page.locator("#event-log li").evaluate_all(
            "items => items.map(item => item.dataset.seq)"
        )
    ]
    assert shown == stored, "the event log misses or repeats events"
    indicator = page.evaluate("window.__indicatorLog")
    assert "reconnecting" in indicator and indicator[-1] == "finished", indicator
    page.get_by_role("link", name="Events", exact=True).click()
    screenshot(page, "execution-after-reconnect")
    # Chromium logs the refused reconnection attempts as console errors: expected here.
    browser_events.console_errors.clear()
    browser_events.assert_quiet()
