"""The artifacts, costs and system pages in a real browser: viewing and downloading files,
traversal refused, hostile files inert; cost figures equal to the API's; the CSV; the system
page with a real worker. axe-core in both themes and a screenshot of each page."""

from __future__ import annotations

import csv
import io
import os
import re
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils.timezone import now
from playwright.sync_api import expect

from artifacts.services import artifact_record_write
from goals.models import SchedulerHeartbeat
from tests.browser.helpers import assert_accessible, screenshot
from tests.factories import DagExecutionFactory, DagFactory
from tests.processes import WebServer

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def png(width: int, height: int) -> bytes:
    """A valid RGB PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = b"".join(b"\x00" + b"\x1d\x4e\xd8" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


PNG = png(2, 2)
SECRET = "nothing-outside-the-folder"


@pytest.fixture(scope="module")
def artifacts_folder(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("data-pages")
    folder = base / "artifacts"
    folder.mkdir()
    (base / "secret.txt").write_text(SECRET)
    os.symlink(base / "secret.txt", folder / "escape.txt")
    return folder


@pytest.fixture(scope="module")
def web_server(django_db_setup, fake_llm_server, tmp_path_factory, artifacts_folder):
    """This module's web process serves the artifacts folder made for it."""
    log = tmp_path_factory.mktemp("web") / "daphne.log"
    server = WebServer(
        log,
        fake_llm=fake_llm_server,
        extra_env={"LLM_MAX_RETRIES": "0", "ARTIFACTS_DIR": str(artifacts_folder)},
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def folder(artifacts_folder) -> Iterator[Path]:
    yield artifacts_folder
    for path in artifacts_folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.unlink()


def both_themes(page, name: str) -> None:
    """axe-core finds nothing serious in the light and the dark theme; a screenshot of each."""
    html = page.locator("html")
    if page.get_attribute("html", "data-theme") == "dark":
        page.get_by_role("button", name="Light theme").click()
    assert_accessible(page, f"{name} (light)")
    screenshot(page, name)
    page.get_by_role("button", name="Dark theme").click()
    expect(html).to_have_attribute("data-theme", "dark")
    assert_accessible(page, f"{name} (dark)")
    screenshot(page, f"{name}-dark")
    page.get_by_role("button", name="Light theme").click()
    expect(html).to_have_attribute("data-theme", "light")


# --- artifacts -----------------------------------------------------------------------------------
def test_artifacts_view_download_and_traversal_refused(
    logged_in_page, ui_user, folder, browser_events
):
    page = logged_in_page
    execution = DagExecutionFactory(dag=DagFactory(dag_title="Weekly digest"), status="completed")
    files = {
        "reports/weekly.md": f"# Weekly findings\n\nPrices rose.\n\n{HOSTILE}\n".encode(),
        "reports/data.json": b'{"items": [1, 2, 3]}',
        "chart.png": PNG,
        "page.html": f"<html><body>{HOSTILE}</body></html>".encode(),
        "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(2)"></svg>',
    }
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        artifact_record_write(
            path=name, size=len(content), owner_id=ui_user.pk, execution_id=execution.id
        )
    (folder / "by-hand.txt").write_text("no record: staff only")

    page.goto("/artifacts")
    expect(page.get_by_role("heading", name="Artifacts", exact=True)).to_be_visible()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(len(files))
    expect(page.locator("tr[data-artifact='by-hand.txt']")).to_have_count(0)
    expect(page.locator("tr[data-artifact='escape.txt']")).to_have_count(0)
    expect(page.locator("tr[data-artifact='reports/weekly.md']")).to_contain_text("Execution")
    both_themes(page, "artifacts")

    page.get_by_label("Search").fill("weekly")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    page.get_by_role("link", name="reports/weekly.md", exact=True).click()
    expect(page.get_by_role("heading", name="reports/weekly.md")).to_be_visible()
    content = page.get_by_test_id("artifact-content")
    expect(content.get_by_role("heading", name="Weekly findings")).to_be_visible()
    expect(content.locator("script, img")).to_have_count(0)
    both_themes(page, "artifact-markdown")
    page.get_by_role("link", name=f"Execution {execution.id}").first.click()
    expect(page).to_have_url(re.compile(f"/executions/{execution.id}$"))

    page.goto("/artifacts/reports/weekly.md")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "weekly.md"
    assert Path(download.value.path()).read_bytes() == files["reports/weekly.md"]

    page.goto("/artifacts/chart.png")
    image = page.get_by_role("img", name="The image chart.png")
    expect(image).to_be_visible()
    assert page.evaluate("document.querySelector('.artifact-image').naturalWidth") == 2
    assert_accessible(page, "artifact image")
    screenshot(page, "artifact-image")

    # Hostile markup opened on its own never runs: text, or a sandboxed document.
    for name in ("page.html", "drawing.svg"):
        response = page.goto(f"/artifacts/{name}?raw=1")
        assert response.status == 200
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in response.headers["content-security-policy"]
    assert browser_events.dialogs == []
    # Chromium says it refused the SVG's script (the sandbox at work); nothing else is logged.
    blocked = [e for e in browser_events.console_errors if e.startswith("Blocked script")]
    assert len(blocked) == 1 and "drawing.svg" in blocked[0]
    browser_events.console_errors.remove(blocked[0])

    for path in (
        "/artifacts/..%2Fsecret.txt",
        "/artifacts/reports/..%2F..%2Fsecret.txt",
        "/artifacts/%2e%2e%2fsecret.txt",
        f"/artifacts/{str(folder.parent / 'secret.txt').replace('/', '%2F')}",
        "/artifacts/escape.txt",
        "/artifacts/escape.txt?download=1",
        "/artifacts/by-hand.txt",
    ):
        response = page.request.get(path)
        assert response.status == 404, path
        assert SECRET not in response.text()
    response = page.goto("/artifacts/..%2Fsecret.txt")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    browser_events.assert_quiet(allow_http_errors=True)


# --- costs ---------------------------------------------------------------------------------------
def make_spend() -> list:
    start = datetime(2026, 2, 1, tzinfo=UTC)
    planners = [("DecomposerV8", "gpt-4o-mini"), ("ResearchPlanner", "llama3")]
    dags = [
        DagFactory(
            dag_title=f"Digest by {agent}",
            agent_name=agent,
            params={"goalText": "x", "model": model},
            planning_total_cost_usd=Decimal("0.0125") * (index + 1),
            created_at=start + timedelta(days=3 * index + 1),
        )
        for index, (agent, model) in enumerate(planners)
    ]
    return [
        DagExecutionFactory(
            dag=dags[index % 2],
            status="completed",
            completed_at=start + timedelta(days=(index * 3) % 27, hours=index),
            total_cost_usd=Decimal("0.0173") * (index + 1),
        )
        for index in range(14)
    ]


def test_costs_page_equals_the_api_and_downloads_csv(logged_in_page, browser_events):
    page = logged_in_page
    made = make_spend()
    page.goto("/costs?from=2026-02-01&to=2026-02-28&groupBy=week")
    expect(page.get_by_role("heading", name="Costs", exact=True)).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("Spend per week"))).to_be_visible()

    api_url = page.get_by_test_id("api-link").get_attribute("href")
    api = page.request.get(api_url).json()
    shown = page.eval_on_selector_all(
        "[data-testid='period-table'] tbody tr",
        "rows => rows.map(r => [r.dataset.period,"
        " ...[...r.querySelectorAll('[data-usd]')].map(c => c.dataset.usd)])",
    )
    assert shown == [
        [row["date"], row["planningCostUsd"], row["executionCostUsd"], row["totalCostUsd"]]
        for row in api["summary"]
    ]
    assert len(shown) == 4
    total = Decimal(api["totals"]["totalCostUsd"])
    assert total == sum((e.total_cost_usd for e in made), Decimal("0.0375"))
    expect(page.get_by_test_id("total-cost")).to_have_text(f"${total:.4f}")
    top = page.locator("[data-testid='top-executions'] tbody tr").first
    expect(top).to_have_attribute("data-execution-id", made[-1].id)
    expect(page.get_by_test_id("agent-table")).to_contain_text("ResearchPlanner")
    both_themes(page, "costs")

    with page.expect_download() as download:
        page.get_by_test_id("csv-link").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["week", "planning_usd", "execution_usd", "total_usd"]
    assert rows[1:-1] == shown
    assert rows[-1] == ["total", *api["totals"].values()]

    # A range the other way round is explained beside the field, what was typed kept.
    page.get_by_label("From").fill("2026-03-10")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("alert")).to_contain_text("The start must not be after the end.")
    expect(page.get_by_label("From")).to_have_value("2026-03-10")
    assert_accessible(page, "costs with an error")
    browser_events.assert_quiet(allow_http_errors=True)


# --- system --------------------------------------------------------------------------------------
def test_system_page_shows_workers_beat_and_versions_to_staff(
    logged_in_page, ui_user, worker, browser_events
):
    page = logged_in_page
    # update(), not save(): logging in re-hashed the password in the server process, and saving
    # this stale copy would put the old hash back and end the session.
    type(ui_user).objects.filter(pk=ui_user.pk).update(is_staff=True)
    moment = now()
    SchedulerHeartbeat.objects.update_or_create(
        name="beat", defaults={"ticked_at": moment, "started_at": moment, "hostname": "beat-1"}
    )
    page.goto("/system")
    expect(page.get_by_role("heading", name="System", exact=True)).to_be_visible()
    expect(page.get_by_test_id("beat-state")).to_contain_text("Ticking")
    expect(page.get_by_test_id("llm-provider")).to_have_text("openai")
    workers = page.get_by_test_id("workers")
    expect(workers).to_be_visible(timeout=15_000)
    # Workers of earlier tests may still be listed as stopped or silent; one reports now.
    live = workers.locator("tbody tr[data-fresh='true']")
    expect(live).to_have_count(1)
    expect(live.get_by_test_id("worker-concurrency")).to_have_text("4")
    expect(page.get_by_test_id("versions")).to_contain_text("Django")
    assert "sk-test-fake" not in page.content()
    both_themes(page, "system")

    type(ui_user).objects.filter(pk=ui_user.pk).update(is_staff=False)
    page.goto("/system")
    expect(page.get_by_test_id("system-status")).to_have_text(re.compile("Ready|Not ready"))
    expect(page.get_by_test_id("workers")).to_have_count(0)
    expect(page.get_by_test_id("versions")).to_have_count(0)
    assert_accessible(page, "system (not staff)")
    screenshot(page, "system-not-staff")
    browser_events.assert_quiet()
