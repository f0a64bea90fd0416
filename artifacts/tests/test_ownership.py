"""Artifact files are visible to whoever's execution or run wrote them, and to staff."""

import pytest
from rest_framework.test import APIClient

from artifacts.models import Artifact
from artifacts.services import artifact_record_tool_write, artifact_record_write
from tests.factories import DagExecutionFactory, RunFactory, TokenFactory, UserFactory

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=user).key}")
    return client


@pytest.fixture
def people():
    return {
        "alice": UserFactory(username="alice"),
        "bob": UserFactory(username="bob"),
        "staff": UserFactory(username="operator", is_staff=True),
    }


@pytest.fixture
def files(artifacts_dir, people):
    (artifacts_dir / "reports").mkdir()
    for name, owner in [("a.md", "alice"), ("reports/b.md", "bob"), ("loose.txt", None)]:
        (artifacts_dir / name).write_text(f"content of {name}")
        if owner:
            artifact_record_write(path=name, size=14, owner_id=people[owner].pk)
    return artifacts_dir


def test_lists_show_own_files_and_staff_all(files, people):
    assert client_for(people["alice"]).get("/api/v1/artifacts").json() == ["a.md"]
    assert client_for(people["bob"]).get("/api/v1/artifacts").json() == ["reports/b.md"]
    assert client_for(people["staff"]).get("/api/v1/artifacts").json() == [
        "a.md",
        "loose.txt",
        "reports/b.md",
    ]


@pytest.mark.parametrize("name", ["reports/b.md", "loose.txt", "missing.md"])
def test_another_users_or_unrecorded_file_reads_as_missing(files, people, name):
    response = client_for(people["alice"]).get(f"/api/v1/artifacts/{name}")
    assert response.status_code == 404
    assert response.json() == {"error": "Artifact not found"}


def test_owner_and_staff_read_the_file(files, people):
    assert client_for(people["bob"]).get("/api/v1/artifacts/reports/b.md").content == (
        b"content of reports/b.md"
    )
    staff = client_for(people["staff"])
    assert staff.get("/api/v1/artifacts/reports/b.md").status_code == 200
    assert staff.get("/api/v1/artifacts/loose.txt").status_code == 200


def test_path_forms_that_resolve_to_the_same_file_follow_its_record(files, people):
    alice = client_for(people["alice"])
    assert alice.get("/api/v1/artifacts/reports//b.md").status_code == 404
    assert alice.get("/api/v1/artifacts/./a.md").status_code == 200


def test_a_file_written_again_passes_to_its_latest_writer(people):
    execution = DagExecutionFactory(owner=people["alice"])
    run = RunFactory(owner=people["bob"])
    artifact_record_tool_write(
        result={"path": "x.md", "size": 3}, owner_id=people["alice"].pk, execution_id=execution.id
    )
    artifact_record_tool_write(
        result={"path": "x.md", "size": 7}, owner_id=people["bob"].pk, run_id=run.id
    )
    artifact = Artifact.objects.get(path="x.md")
    assert (artifact.owner, artifact.execution_id, artifact.run_id, artifact.size) == (
        people["bob"],
        None,
        run.id,
        7,
    )


def test_a_result_without_a_path_records_nothing():
    assert artifact_record_tool_write(result="not a dict", owner_id=None) is None
    assert not Artifact.objects.exists()


# Tools run on their own thread (another database connection): committed rows only.
@pytest.mark.django_db(transaction=True)
def test_tools_working_for_a_user_read_and_overwrite_only_that_users_files(files, people):
    from artifacts.selectors import artifact_access_check
    from tools.base import ToolContext, ToolError
    from tools.services import tool_run

    def context(user) -> ToolContext:
        return ToolContext(may_access_artifact=artifact_access_check(owner_id=user.pk))

    alice = context(people["alice"])
    assert tool_run(name="readFile", params={"path": "a.md"}, context=alice)["content"] == (
        "content of a.md"
    )
    for name in ("reports/b.md", "loose.txt"):
        with pytest.raises(ToolError, match="File not found"):
            tool_run(name="readFile", params={"path": name}, context=alice)
        with pytest.raises(ToolError, match="belongs to another user"):
            tool_run(name="writeFile", params={"path": name, "content": "mine now"}, context=alice)
    assert (files / "reports" / "b.md").read_text() == "content of reports/b.md"
    assert (
        tool_run(name="writeFile", params={"path": "new.md", "content": "fresh"}, context=alice)[
            "size"
        ]
        == 5
    )

    staff = context(people["staff"])
    assert tool_run(name="readFile", params={"path": "loose.txt"}, context=staff)["size"] > 0
    # Work without an owner (from before owners existed) is not restricted.
    assert artifact_access_check(owner_id=None) is None
