"""The artifacts pages through Django's test client: who sees which file, search, sort and
paging, each kind of file shown safely, downloads, traversal refused, constant query counts.
The same in a real browser: tests/browser/test_data_pages.py."""

from __future__ import annotations

import os
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from artifacts.services import artifact_record_write
from tests.factories import DagExecutionFactory, RunFactory, UserFactory

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)
SECRET = "outside-the-folder-secret"


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="operator", is_staff=True))
    return client


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def write(folder, name: str, content: str | bytes, owner=None, **writer) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    if owner is not None:
        artifact_record_write(path=name, size=path.stat().st_size, owner_id=owner.pk, **writer)


def listed(client, query: str = "") -> list[str]:
    body = client.get(f"/artifacts{query}").content.decode()
    return re.findall(r'<tr data-artifact="([^"]+)"', body)


# --- list ----------------------------------------------------------------------------------------
def test_pages_need_a_login(client, artifacts_dir):
    write(artifacts_dir, "a.md", "x")
    for path in ("/artifacts", "/artifacts/a.md", "/artifacts/a.md?download=1"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login")


def test_owners_see_their_files_and_staff_see_every_file(alice, staff_client, artifacts_dir):
    bob = UserFactory(username="bob")
    execution = DagExecutionFactory(owner=alice)
    run = RunFactory(goal__owner=alice)
    write(artifacts_dir, "reports/alice.md", "a", alice, execution_id=execution.id)
    write(artifacts_dir, "alice-run.txt", "r", alice, run_id=run.id)
    write(artifacts_dir, "bob.md", "b", bob)
    write(artifacts_dir, "by-hand.txt", "h")

    assert listed(client_for(alice)) == ["alice-run.txt", "reports/alice.md"]
    assert listed(client_for(bob)) == ["bob.md"]
    assert listed(staff_client) == ["alice-run.txt", "bob.md", "by-hand.txt", "reports/alice.md"]

    body = client_for(alice).get("/artifacts").content.decode()
    assert f'href="/executions/{execution.id}"' in body
    assert run.id in body
    assert "No record" in staff_client.get("/artifacts").content.decode()


def test_search_sort_and_pages(staff_client, artifacts_dir):
    for index in range(60):
        write(artifacts_dir, f"notes/file-{index:02d}.txt", "x" * index)
    write(artifacts_dir, "Summary.MD", "y")

    assert listed(staff_client, "?q=summary") == ["Summary.MD"]
    first = listed(staff_client)
    assert len(first) == 50 and first[0] == "Summary.MD"
    second = listed(staff_client, "?page=2")
    assert second == [f"notes/file-{index:02d}.txt" for index in range(49, 60)]
    assert listed(staff_client, "?sort=-size")[0] == "notes/file-59.txt"
    assert listed(staff_client, "?sort=nonsense")[0] == "Summary.MD"
    body = staff_client.get("/artifacts?q=no-such-file").content.decode()
    assert "No file matches" in body


def test_an_empty_folder_explains_itself(staff_client, artifacts_dir):
    assert "No artifacts yet" in staff_client.get("/artifacts").content.decode()


def test_list_query_count_does_not_grow_with_files(alice, artifacts_dir):
    client = client_for(alice)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/artifacts").status_code == 200
        return len(captured)

    execution = DagExecutionFactory(owner=alice)
    for index in range(5):
        write(artifacts_dir, f"small-{index}.md", "x", alice, execution_id=execution.id)
    small = count()
    for index in range(120):
        write(artifacts_dir, f"large-{index}.md", "x", alice, execution_id=execution.id)
    assert count() == small


# --- one file ------------------------------------------------------------------------------------
def test_markdown_is_rendered_and_sanitized(alice, artifacts_dir):
    write(artifacts_dir, "report.md", f"# Findings\n\n{HOSTILE}\n[x](javascript:alert(1))", alice)
    body = client_for(alice).get("/artifacts/report.md").content.decode()
    content = body.split('data-testid="artifact-content"', 1)[1]
    assert "<h1>Findings</h1>" in content
    assert "<script" not in content and "onerror=" not in content.replace("onerror=alert", "")
    assert 'href="javascript:' not in content


def test_text_json_and_code_are_shown_as_text(staff_client, artifacts_dir):
    write(artifacts_dir, "data.json", '{"answer": 42}')
    write(artifacts_dir, "page.html", f"<html><body>{HOSTILE}</body></html>")
    write(artifacts_dir, "tricky.py", "print(1)\n```\n<script>alert(2)</script>\n")

    assert '"answer"' in staff_client.get("/artifacts/data.json").content.decode()
    for name in ("page.html", "tricky.py"):
        body = staff_client.get(f"/artifacts/{name}").content.decode()
        content = body.split('data-testid="artifact-content"', 1)[1].split("</article>")[0]
        assert 'data-kind="code"' in body
        assert "alert" in content and "<script" not in content and "<img" not in content


def test_images_and_pdfs_are_embedded_with_their_own_type(staff_client, artifacts_dir):
    write(artifacts_dir, "chart.png", PNG)
    write(artifacts_dir, "paper.pdf", b"%PDF-1.4\n%%EOF\n")

    body = staff_client.get("/artifacts/chart.png").content.decode()
    assert '<img class="artifact-image" src="/artifacts/chart.png?raw=1"' in body
    raw = staff_client.get("/artifacts/chart.png?raw=1")
    assert raw["Content-Type"] == "image/png" and raw.content == PNG
    assert raw["Content-Disposition"] == 'inline; filename="chart.png"'
    assert "sandbox" in raw["Content-Security-Policy"]

    body = staff_client.get("/artifacts/paper.pdf").content.decode()
    assert 'data="/artifacts/paper.pdf?raw=1" type="application/pdf"' in body
    raw = staff_client.get("/artifacts/paper.pdf?raw=1")
    assert raw["Content-Type"] == "application/pdf"
    assert raw["X-Frame-Options"] == "SAMEORIGIN"
    assert raw["Content-Security-Policy"].startswith("default-src 'none'")


@pytest.mark.parametrize("name", ["page.html", "drawing.svg", "page.xhtml"])
def test_markup_files_never_run_as_pages_of_the_site(staff_client, artifacts_dir, name):
    write(artifacts_dir, name, f'<svg xmlns="http://www.w3.org/2000/svg">{HOSTILE}</svg>')
    for query in ("?raw=1", "?download=1"):
        response = staff_client.get(f"/artifacts/{name}{query}")
        assert response["X-Content-Type-Options"] == "nosniff"
        policy = response["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "sandbox" in policy
        assert response["Content-Type"] in (
            "text/plain; charset=utf-8",
            "image/svg+xml",
            "application/octet-stream",
        )
        if query == "?download=1":
            assert response["Content-Disposition"].startswith("attachment;")
    assert staff_client.get("/artifacts/page.html?raw=1")["Content-Type"] != "text/html"


def test_download_is_an_attachment_with_the_bytes(alice, artifacts_dir):
    write(artifacts_dir, "deep/folder/résumé notes.txt", "plain words", alice)
    response = client_for(alice).get("/artifacts/deep/folder/résumé notes.txt?download=1")
    assert response.status_code == 200
    assert response.content == b"plain words"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment; filename*=utf-8''r%C3%A9sum")


def test_binary_files_are_offered_for_download(staff_client, artifacts_dir):
    write(artifacts_dir, "blob.bin", bytes(range(256)))
    body = staff_client.get("/artifacts/blob.bin").content.decode()
    assert "not text" in body
    raw = staff_client.get("/artifacts/blob.bin?raw=1")
    assert raw["Content-Disposition"].startswith("attachment;")


def test_someone_elses_file_is_the_same_404_as_a_missing_one(alice, artifacts_dir):
    bob = UserFactory(username="bob")
    write(artifacts_dir, "alice.md", "private", alice)
    write(artifacts_dir, "by-hand.md", "staff only")
    client = client_for(bob)
    for name in ("alice.md", "by-hand.md"):
        for query in ("", "?download=1", "?raw=1"):
            response = client.get(f"/artifacts/{name}{query}")
            assert response.status_code == 404
            assert b"private" not in response.content and b"staff only" not in response.content
    assert client.get("/artifacts/missing.md").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/artifacts/../secret.txt",
        "/artifacts/..%2Fsecret.txt",
        "/artifacts/%2e%2e/secret.txt",
        "/artifacts/%2E%2E%2Fsecret.txt",
        "/artifacts/sub/../../secret.txt",
        "/artifacts//{outside}",
        "/artifacts/{outside_encoded}",
        "/artifacts/link.txt",
        "/artifacts/link-dir/secret.txt",
    ],
)
def test_nothing_outside_the_folder_is_reachable(staff_client, artifacts_dir, path):
    outside = artifacts_dir.parent / "secret.txt"
    outside.write_text(SECRET)
    (artifacts_dir / "sub").mkdir()
    os.symlink(outside, artifacts_dir / "link.txt")
    os.symlink(artifacts_dir.parent, artifacts_dir / "link-dir", target_is_directory=True)
    path = path.format(
        outside=str(outside).lstrip("/"), outside_encoded=str(outside).replace("/", "%2F")
    )
    for query in ("", "?raw=1", "?download=1"):
        response = staff_client.get(path + query)
        assert response.status_code == 404, (path, query)
        assert SECRET.encode() not in response.content
    assert "link.txt" not in listed(staff_client)
    assert not [name for name in listed(staff_client) if name.startswith("link-dir")]
