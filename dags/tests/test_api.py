from decimal import Decimal

import pytest

from dags.models import Dag, DagExecution, SubStep
from tests.factories import DagExecutionFactory, DagFactory, SubStepFactory

pytestmark = pytest.mark.django_db

DAG_KEYS = ["id", "status", "result", "usage", "generationStats", "attempts", "params",
            "agentName", "dagTitle", "cronSchedule", "scheduleActive", "lastRunAt", "timezone",
            "scheduleError", "scheduleErrorAt", "createdAt", "updatedAt", "planningTotalUsage",
            "planningTotalCostUsd", "planningAttempts"]  # fmt: skip
EXECUTION_KEYS = ["id", "dagId", "originalRequest", "primaryIntent", "status", "startedAt",
                  "completedAt", "durationMs", "totalTasks", "completedTasks", "failedTasks",
                  "waitingTasks", "finalResult", "synthesisResult", "suspendedReason",
                  "suspendedAt", "retryCount", "lastRetryAt", "totalUsage", "totalCostUsd",
                  "createdAt", "updatedAt"]  # fmt: skip
SUB_STEP_KEYS = ["id", "executionId", "taskId", "description", "thought", "actionType",
                 "toolOrPromptName", "toolOrPromptParams", "dependencies", "status",
                 "startedAt", "completedAt", "durationMs", "result", "error", "usage", "costUsd",
                 "generationStats", "createdAt", "updatedAt"]  # fmt: skip


# --- DAGs ----------------------------------------------------------------------------------------
def test_list_envelope_and_pagination(api):
    dags = [DagFactory() for _ in range(5)]

    body = api.get("/api/v1/dags?limit=2&offset=1").json()

    assert body["pagination"] == {"limit": 2, "offset": 1, "count": 2}
    assert [d["id"] for d in body["dags"]] == [dags[3].id, dags[2].id]
    assert list(body["dags"][0]) == DAG_KEYS


def test_dag_serialises_costs_as_strings_and_json_as_json(api):
    dag = DagFactory(
        planning_total_cost_usd=Decimal("0.0012300"),
        usage={"promptTokens": 1, "completionTokens": 2, "totalTokens": 3},
    )
    body = api.get(f"/api/v1/dags/{dag.id}").json()
    assert body["planningTotalCostUsd"] == "0.00123"
    assert body["usage"] == {"promptTokens": 1, "completionTokens": 2, "totalTokens": 3}
    assert body["result"]["sub_tasks"][0]["id"] == "001"
    assert body["lastRunAt"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "offset=-1"])
def test_list_rejects_bad_paging(api, query):
    response = api.get(f"/api/v1/dags?{query}")
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid query parameters"


def test_list_filters_by_status(api):
    DagFactory(status="paused")
    active = DagFactory(status="active")
    body = api.get("/api/v1/dags?status=active").json()
    assert [d["id"] for d in body["dags"]] == [active.id]


def test_scheduled_lists_cron_dags_with_english_description(api):
    DagFactory()  # no cron: not listed
    daily = DagFactory(cron_schedule="0 9 * * *", schedule_active=True, dag_title="Daily")
    broken = DagFactory(cron_schedule="", schedule_active=False)

    body = api.get("/api/v1/dags/scheduled").json()

    by_id = {item["id"]: item for item in body}
    assert set(by_id) == {daily.id, broken.id}
    assert by_id[daily.id] == {
        "id": daily.id,
        "dag_title": "Daily",
        "cron_schedule": "0 9 * * *",
        "schedule_description": "At 09:00 AM",
        "schedule_active": True,
        "timezone": "UTC",
        "schedule_error": None,
    }
    assert by_id[broken.id]["schedule_description"] == "Invalid schedule"


def test_get_unknown_dag_is_404(api):
    response = api.get("/api/v1/dags/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "DAG with id 'nope' not found"}


def test_patch_updates_schedule_title_and_status(api):
    dag = DagFactory()
    response = api.patch(
        f"/api/v1/dags/{dag.id}",
        {
            "cronSchedule": "*/5 * * * *",
            "scheduleActive": True,
            "timezone": "Asia/Tokyo",
            "dagTitle": "  Five-minutely  ",
            "status": "active",
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["cronSchedule"], body["scheduleActive"], body["timezone"]) == (
        "*/5 * * * *",
        True,
        "Asia/Tokyo",
    )
    assert body["dagTitle"] == "Five-minutely"
    assert body["status"] == "active"
    assert body["updatedAt"] >= body["createdAt"]


def test_patch_empty_cron_clears_the_schedule(api):
    dag = DagFactory(cron_schedule="0 9 * * *", schedule_active=True)
    body = api.patch(f"/api/v1/dags/{dag.id}", {"cronSchedule": ""}, format="json").json()
    assert body["cronSchedule"] is None


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"cronSchedule": "61 * * * *"}, ["cronSchedule"]),
        ({"cronSchedule": "bad"}, ["cronSchedule"]),
        ({"timezone": "Nowhere/Land"}, ["timezone"]),
        ({"scheduleActive": "sometimes"}, ["scheduleActive"]),
        ({"result": "text"}, ["result"]),
    ],
)
def test_patch_invalid_is_400(api, body, path):
    dag = DagFactory()
    response = api.patch(f"/api/v1/dags/{dag.id}", body, format="json")
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "Invalid parameters"
    assert any(e["path"] == path for e in payload["validation_errors"])


def test_patch_unknown_dag_is_404(api):
    assert api.patch("/api/v1/dags/nope", {"status": "x"}, format="json").status_code == 404


@pytest.mark.parametrize("prefix", ["/api/v1/dags", "/api/v1/dag"])
def test_delete_dag_with_executions_is_409(api, prefix):
    execution = DagExecutionFactory()
    DagExecutionFactory(dag=execution.dag)
    response = api.delete(f"{prefix}/{execution.dag_id}")
    assert response.status_code == 409
    assert response.json() == {
        "error": "Cannot delete DAG: 2 execution(s) exist for this DAG",
        "dagId": execution.dag_id,
        "executionCount": 2,
    }
    assert Dag.objects.filter(pk=execution.dag_id).exists()


@pytest.mark.parametrize("prefix", ["/api/v1/dags", "/api/v1/dag"])
def test_delete_dag_without_executions(api, prefix):
    dag = DagFactory()
    response = api.delete(f"{prefix}/{dag.id}")
    assert response.status_code == 200
    assert response.json() == {"message": "DAG deleted successfully", "dagId": dag.id}
    assert api.delete(f"{prefix}/{dag.id}").status_code == 404


def test_dag_alias_only_deletes(api):
    dag = DagFactory()
    assert api.get(f"/api/v1/dag/{dag.id}").status_code == 405


# --- Executions ----------------------------------------------------------------------------------
def test_execution_list_has_title_first_and_paging(api):
    executions = [DagExecutionFactory() for _ in range(3)]
    body = api.get("/api/v1/dag-executions?limit=2").json()
    assert body["pagination"] == {"limit": 2, "offset": 0, "count": 2}
    first = body["executions"][0]
    assert list(first) == ["dagTitle", *EXECUTION_KEYS]
    assert first["id"] == executions[-1].id
    assert first["dagTitle"] == executions[-1].dag.dag_title


@pytest.mark.parametrize("status", ["suspended", "cancelled", "completed"])
def test_execution_list_accepts_every_status(api, status):
    match = DagExecutionFactory(status=status)
    DagExecutionFactory(status="running")
    body = api.get(f"/api/v1/dag-executions?status={status}").json()
    assert [e["id"] for e in body["executions"]] == [match.id]


def test_execution_list_rejects_unknown_status(api):
    response = api.get("/api/v1/dag-executions?status=exploded")
    assert response.status_code == 400
    assert response.json()["validation_errors"][0]["path"] == ["status"]


def test_execution_list_uses_a_constant_number_of_queries(api, django_assert_max_num_queries):
    for _ in range(20):
        DagExecutionFactory()
    with django_assert_max_num_queries(2):
        body = api.get("/api/v1/dag-executions?limit=50").json()
    assert len(body["executions"]) == 20


def test_execution_detail_has_sub_steps_in_task_order(api):
    execution = DagExecutionFactory(total_cost_usd=Decimal("0.5"))
    SubStepFactory(execution=execution, task_id="__SYNTHESIS__")
    SubStepFactory(execution=execution, task_id="002", cost_usd=Decimal("0.25"))
    SubStepFactory(execution=execution, task_id="001")

    body = api.get(f"/api/v1/dag-executions/{execution.id}").json()

    assert list(body) == ["dagTitle", *EXECUTION_KEYS, "subSteps"]
    assert [s["taskId"] for s in body["subSteps"]] == ["001", "002", "__SYNTHESIS__"]
    assert list(body["subSteps"][0]) == SUB_STEP_KEYS
    assert body["subSteps"][1]["costUsd"] == "0.25"
    assert body["totalCostUsd"] == "0.5"


def test_execution_sub_steps_envelope(api):
    execution = DagExecutionFactory()
    SubStepFactory(execution=execution, task_id="001")
    body = api.get(f"/api/v1/dag-executions/{execution.id}/sub-steps").json()
    assert body["executionId"] == execution.id
    assert [s["taskId"] for s in body["subSteps"]] == ["001"]


@pytest.mark.parametrize("suffix", ["", "/sub-steps"])
def test_unknown_execution_is_404(api, suffix):
    response = api.get(f"/api/v1/dag-executions/dag-exec_nope{suffix}")
    assert response.status_code == 404
    assert response.json() == {"error": "DAG execution with id 'dag-exec_nope' not found"}


def test_execution_delete_reports_cascade(api):
    execution = DagExecutionFactory()
    SubStepFactory(execution=execution, task_id="001")
    SubStepFactory(execution=execution, task_id="002")

    response = api.delete(f"/api/v1/dag-executions/{execution.id}")

    assert response.status_code == 200
    assert response.json() == {
        "message": "DAG execution deleted successfully",
        "executionId": execution.id,
        "cascadeInfo": {"relatedSubStepsDeleted": 2},
    }
    assert not DagExecution.objects.exists()
    assert not SubStep.objects.exists()


def test_executions_of_a_dag_envelope_and_filter(api):
    dag = DagFactory()
    suspended = DagExecutionFactory(dag=dag, status="suspended")
    DagExecutionFactory(dag=dag, status="completed")
    DagExecutionFactory()  # another DAG

    body = api.get(f"/api/v1/dags/{dag.id}/executions?status=suspended").json()

    assert body["total"] == 1
    assert (body["limit"], body["offset"]) == (50, 0)
    assert [e["id"] for e in body["executions"]] == [suspended.id]
    assert "dagTitle" not in body["executions"][0]
    all_of_dag = api.get(f"/api/v1/dags/{dag.id}/executions?limit=1").json()
    assert all_of_dag["total"] == 2
    assert len(all_of_dag["executions"]) == 1


def test_executions_of_a_dag_errors(api):
    dag = DagFactory()
    assert api.get("/api/v1/dags/nope/executions").status_code == 404
    bad = api.get(f"/api/v1/dags/{dag.id}/executions?limit=0")
    assert bad.status_code == 400
    assert bad.json()["error"] == "Invalid parameters"
