"""Helpers for browser tests: logging in, screenshots, axe-core checks, event recording."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import axe_playwright_python
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
AXE_SCRIPT = Path(axe_playwright_python.__file__).with_name("axe.min.js")
BLOCKING_IMPACTS = {"serious", "critical"}
HTTP_ERROR_NOTE = re.compile(
    r"Failed to load resource: the server responded with a status of 4\d\d"
)


@dataclass
class BrowserEvents:
    """What a page did that a test may need to rule out: console errors, uncaught errors,
    dialogs (alert/confirm/prompt; each one is dismissed)."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("dialog", self._dialog)

    def _console(self, message) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def assert_quiet(self, *, allow_http_errors: bool = False) -> None:
        """No dialog opened, no script error, nothing logged as an error. With
        `allow_http_errors`, the browser's own notes about 4xx answers (a form sent back with
        its errors) are not counted."""
        assert not self.dialogs, f"dialogs opened: {self.dialogs}"
        assert not self.page_errors, f"uncaught errors: {self.page_errors}"
        errors = [
            text
            for text in self.console_errors
            if not (allow_http_errors and HTTP_ERROR_NOTE.match(text))
        ]
        assert not errors, f"console errors: {errors}"


def log_in(page, username: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"^(?!.*/login).*$"))


def admin_log_in(page, username: str, password: str) -> None:
    """Through the Django admin's own login form, as an operator reaches it."""
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Saved under var/screenshots/ (kept by CI as artifacts)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if full_page:
        # From the top: a page scrolled to an anchor would show its sticky header mid-image.
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full_page)
    return path


def axe_violations(page, *, impacts: set[str] = BLOCKING_IMPACTS) -> list[dict[str, Any]]:
    """axe-core's violations of the given impacts on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    # No stylesheet preload: axe fetches a sheet's @import relative to the page rather than the
    # sheet (the admin's forms.css imports widgets.css), a request that 404s and is logged as a
    # console error; the one rule it serves, css-orientation-lock, does not apply to our CSS.
    results = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations'], preload: false})"
    )
    return [v for v in results["violations"] if v.get("impact") in impacts]


def assert_accessible(page, label: str = "") -> None:
    violations = axe_violations(page)
    summary = [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [node["target"] for node in v["nodes"][:5]],
        }
        for v in violations
    ]
    assert not violations, f"axe found serious/critical issues on {label or page.url}:\n" + (
        json.dumps(summary, indent=2)
    )
