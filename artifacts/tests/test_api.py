import os

import pytest

pytestmark = pytest.mark.django_db


def test_list_is_sorted_bytewise_and_includes_sub_folders(api, artifacts_dir):
    (artifacts_dir / "b.json").write_text("{}")
    (artifacts_dir / "A.txt").write_text("a")
    (artifacts_dir / "reports").mkdir()
    (artifacts_dir / "reports" / "week.md").write_text("# week")

    assert api.get("/api/v1/artifacts").json() == ["A.txt", "b.json", "reports/week.md"]


def test_list_of_missing_folder_is_empty(api, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "nothing-here"
    assert api.get("/api/v1/artifacts").json() == []


def test_get_returns_raw_text_even_for_json(api, artifacts_dir):
    (artifacts_dir / "data.json").write_text('{"a": 1}')
    response = api.get("/api/v1/artifacts/data.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content == b'{"a": 1}'


def test_files_in_sub_folders_are_reachable(api, artifacts_dir):
    (artifacts_dir / "reports").mkdir()
    (artifacts_dir / "reports" / "week.md").write_text("# week")
    assert api.get("/api/v1/artifacts/reports/week.md").content == b"# week"


def test_missing_artifact_is_404(api, artifacts_dir):
    response = api.get("/api/v1/artifacts/nope.txt")
    assert response.status_code == 404
    assert response.json() == {"error": "Artifact not found"}


@pytest.mark.parametrize(
    "path",
    ["../secret.txt", "..%2Fsecret.txt", "reports/../../secret.txt", "%2Fetc%2Fpasswd"],
)
def test_traversal_never_reads_outside_the_folder(api, artifacts_dir, path):
    (artifacts_dir.parent / "secret.txt").write_text("TOP SECRET")
    response = api.get(f"/api/v1/artifacts/{path}")
    assert response.status_code in (400, 404)
    assert b"TOP SECRET" not in response.content


def test_symlink_out_of_the_folder_is_not_served_or_listed(api, artifacts_dir):
    outside = artifacts_dir.parent / "outside.txt"
    outside.write_text("TOP SECRET")
    os.symlink(outside, artifacts_dir / "link.txt")

    response = api.get("/api/v1/artifacts/link.txt")

    assert response.status_code == 400
    assert b"TOP SECRET" not in response.content
    assert api.get("/api/v1/artifacts").json() == []


def test_sibling_folder_with_same_prefix_is_refused(api, artifacts_dir):
    sibling = artifacts_dir.parent / (artifacts_dir.name + "-other")
    sibling.mkdir()
    (sibling / "x.txt").write_text("TOP SECRET")
    response = api.get(f"/api/v1/artifacts/../{sibling.name}/x.txt")
    assert b"TOP SECRET" not in response.content
