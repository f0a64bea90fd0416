"""Execution endpoints: execute-dag, dag-run, resume-dag, cancel, and the cost read-outs."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.access import acting_user, owner_for_new_row
from config.api.exceptions import INPUT_LABEL, PARAMS_LABEL, ApiValidationError
from config.api.validation import StrictCharField, validated, validated_query
from dags import costs, selectors
from dags.execution import dispatch, services
from dags.plan import PlanError
from dags.serializers import QUEUE_NOTE_DOC, with_queue_note

STARTED_MESSAGE = "DAG execution started. Connect to SSE stream for live updates."
RESUMED_MESSAGE = "DAG execution resumed. Connect to SSE stream for live updates."


class DagIdIn(serializers.Serializer):
    dagId = StrictCharField(min_length=1, max_length=40)


class CostSummaryQuery(serializers.Serializer):
    groupBy = serializers.ChoiceField(
        choices=["day", "week", "month"], default="day", allow_blank=True
    )
    # `from` is a Python keyword: declared below.
    to = serializers.CharField(required=False, allow_blank=True)


CostSummaryQuery._declared_fields["from"] = serializers.CharField(required=False, allow_blank=True)

StartedOut = inline_serializer(
    "ExecutionStarted",
    {
        "status": serializers.CharField(),
        "executionId": serializers.CharField(),
        "dagId": serializers.CharField(),
        "originalRequest": serializers.CharField(),
        "totalTasks": serializers.IntegerField(),
        "message": serializers.CharField(),
    },
)
ClarificationOut = inline_serializer(
    "ExecutionClarification",
    {
        "status": serializers.CharField(),
        "clarification_query": serializers.CharField(),
        "validation": serializers.JSONField(),
    },
)


def _launch(request: Request) -> Response:
    data = validated(DagIdIn, request.data)
    viewer = acting_user(request.user)
    dag = selectors.dag_for_launch(dag_id=data["dagId"], viewer=viewer)
    try:
        # Nodes go after the answer, unless this process last found the queue away: then they
        # are sent before it, so that the answer can say whether they got through.
        queue_seen_away = dispatch.broker_seems_away()
        execution = services.execution_launch(
            dag=dag, owner=owner_for_new_row(viewer), send_after_response=not queue_seen_away
        )
    except PlanError as error:
        raise ApiValidationError(
            {"result": [issue["message"] for issue in error.issues]}, INPUT_LABEL
        ) from None
    except services.ClarificationNeeded as clarification:
        job = clarification.job
        return Response(
            {
                "status": "clarification_required",
                "clarification_query": job.clarification_query,
                "validation": job.validation.model_dump(),
            }
        )
    return Response(
        {
            "status": "started",
            "executionId": execution.id,
            "dagId": dag.id,
            "originalRequest": execution.original_request,
            "totalTasks": execution.total_tasks,
            "message": (
                with_queue_note(STARTED_MESSAGE, execution.id)
                if queue_seen_away
                else STARTED_MESSAGE
            ),
        },
        status=202,
    )


class ExecuteDagApi(APIView):
    @extend_schema(
        operation_id="execute_dag",
        request=DagIdIn,
        responses={202: StartedOut, 200: ClarificationOut},
        tags=["executions"],
        description="Start an execution of a stored DAG; answers at once, work runs on workers."
        + QUEUE_NOTE_DOC,
    )
    def post(self, request: Request) -> Response:
        return _launch(request)


class DagRunApi(APIView):
    @extend_schema(
        operation_id="run_dag",
        request=DagIdIn,
        responses={202: StartedOut, 200: ClarificationOut},
        tags=["executions"],
        description="Run a stored DAG (the same as execute-dag)." + QUEUE_NOTE_DOC,
    )
    def post(self, request: Request) -> Response:
        return _launch(request)


class ResumeDagApi(APIView):
    @extend_schema(
        operation_id="resume_dag",
        request=None,
        responses={
            202: inline_serializer(
                "ExecutionResumed",
                {
                    "status": serializers.CharField(),
                    "executionId": serializers.CharField(),
                    "dagId": serializers.CharField(),
                    "retryCount": serializers.IntegerField(),
                    "message": serializers.CharField(),
                },
            )
        },
        tags=["executions"],
        description="Run again only the tasks that did not complete (suspended, failed or "
        "cancelled executions)." + QUEUE_NOTE_DOC,
    )
    def post(self, request: Request, execution_id: str) -> Response:
        execution = selectors.execution_get(
            execution_id=execution_id, viewer=acting_user(request.user)
        )
        execution = services.execution_resume(execution_id=execution.id)
        return Response(
            {
                "status": "resumed",
                "executionId": execution.id,
                "dagId": execution.dag_id,
                "retryCount": execution.retry_count,
                "message": with_queue_note(RESUMED_MESSAGE, execution.id),
            },
            status=202,
        )


class CancelExecutionApi(APIView):
    @extend_schema(
        operation_id="cancel_dag_execution",
        request=None,
        responses=inline_serializer(
            "ExecutionCancelled",
            {
                "status": serializers.CharField(),
                "executionId": serializers.CharField(),
                "message": serializers.CharField(),
            },
        ),
        tags=["executions"],
        description="Stop an execution: nothing new starts, queued work is revoked, running "
        "tasks finish and are recorded. 409 for executions that already ended.",
    )
    def post(self, request: Request, execution_id: str) -> Response:
        execution = selectors.execution_get(
            execution_id=execution_id, viewer=acting_user(request.user)
        )
        services.execution_cancel(execution_id=execution.id)
        return Response(
            {
                "status": "cancelled",
                "executionId": execution.id,
                "message": "DAG execution cancelled.",
            }
        )


class ExecutionCostsApi(APIView):
    @extend_schema(
        operation_id="get_dag_execution_costs",
        responses=inline_serializer("ExecutionCosts", {"dagId": serializers.CharField()}),
        tags=["costs"],
    )
    def get(self, request: Request, execution_id: str) -> Response:
        execution = selectors.execution_get(
            execution_id=execution_id, viewer=acting_user(request.user)
        )
        return Response(costs.execution_costs(execution=execution))


class DagCostsApi(APIView):
    @extend_schema(
        operation_id="get_dag_costs",
        responses=inline_serializer("DagCosts", {"dagId": serializers.CharField()}),
        tags=["costs"],
    )
    def get(self, request: Request, dag_id: str) -> Response:
        viewer = acting_user(request.user)
        dag = selectors.dag_get(dag_id=dag_id, viewer=viewer)
        return Response(costs.dag_costs(dag=dag, viewer=viewer))


class CostSummaryApi(APIView):
    @extend_schema(
        operation_id="get_cost_summary",
        parameters=[CostSummaryQuery],
        responses=inline_serializer("CostSummary", {"summary": serializers.JSONField()}),
        tags=["costs"],
        description="Planning and execution costs per day, week (starting Sunday) or month. "
        "`from`/`to`: ISO dates or `<n>d`, `<n>w`, `<n>m` back from now.",
    )
    def get(self, request: Request) -> Response:
        query = validated_query(CostSummaryQuery, request.query_params, label=PARAMS_LABEL)
        start, end = costs.summary_range(start=query.get("from"), end=query.get("to"))
        return Response(
            costs.cost_summary(
                start=start,
                end=end,
                group_by=query["groupBy"],
                viewer=acting_user(request.user),
            )
        )
