"""Planning endpoints: create-dag, create-and-execute-dag and dag-experiments."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.access import acting_user, owner_for_new_row
from config.api.validation import validated
from config.errors import DomainError
from dags.execution import dispatch
from dags.execution.services import ClarificationNeeded, execution_launch
from dags.plan import PlanError, job_dict
from dags.planning.experiments import experiments_run
from dags.planning.serializers import (
    GOAL_TEXT,
    ClarificationOut,
    CreateDagIn,
    DagCreatedOut,
    DagExecutingOut,
    DagExperimentsIn,
    DagExperimentsOut,
    experiment_base,
    plan_request,
)
from dags.planning.services import (
    CRON_ERROR,
    PlanningError,
    PlanningResult,
    dag_plan,
    planner_agent,
    provider_checked,
)
from dags.serializers import QUEUE_NOTE_DOC, with_queue_note

EXECUTING_MESSAGE = "DAG created and execution started. Connect to SSE stream for live updates."

_ERRORS = {
    400: OpenApiResponse(
        description="Invalid input, cron expression or provider, or no valid plan after 3 attempts"
    ),
    404: OpenApiResponse(description="The planner agent does not exist or is not active"),
    502: OpenApiResponse(
        description="The LLM provider failed, or gave no parseable, gap-free plan in 3 attempts"
    ),
}


def _clarification(result: PlanningResult) -> Response:
    return Response(
        {
            "status": "clarification_required",
            "clarification_query": result.job.clarification_query,
            "result": job_dict(result.job),
            "usage": result.usage,
            "generation_stats": result.generation_stats,
        }
    )


class CreateDagApi(APIView):
    @extend_schema(
        operation_id="create_dag",
        request=CreateDagIn,
        responses={200: DagCreatedOut, **_ERRORS},
        tags=["planning"],
        description="Plan the request with the named planner agent and store the DAG. A plan "
        "that needs clarification answers with the question (ClarificationOut) and stores "
        "nothing.",
    )
    def post(self, request: Request) -> Response:
        data = validated(CreateDagIn, request.data)
        owner = owner_for_new_row(acting_user(request.user))
        result = dag_plan(request=plan_request(data), owner=owner)
        if result.dag is None:
            return _clarification(result)
        return Response({"status": "success", "dagId": result.dag.id})


def _failed(error: DomainError) -> DomainError:
    """create-and-execute's errors carry `status: "failed"` (except the cron error, as in the
    original)."""
    if error.message != CRON_ERROR:
        error.extra = {"status": "failed", **error.extra}
    return error


class CreateAndExecuteDagApi(APIView):
    @extend_schema(
        operation_id="create_and_execute_dag",
        request=CreateDagIn,
        responses={202: DagExecutingOut, 200: ClarificationOut, **_ERRORS},
        tags=["planning"],
        description="Plan and store the DAG as create-dag does, then start its execution on "
        'the workers. Error bodies carry status "failed".' + QUEUE_NOTE_DOC,
    )
    def post(self, request: Request) -> Response:
        data = validated(CreateDagIn, request.data, status="failed")
        try:
            result = dag_plan(
                request=plan_request(data), owner=owner_for_new_row(acting_user(request.user))
            )
        except DomainError as error:
            raise _failed(error) from None
        if result.dag is None:
            return _clarification(result)
        dag = result.dag
        # As execute-dag: nodes go after the answer (committed as ready and unsent first, so a
        # worker's dispatcher sends them if this process dies), unless this process last found
        # the queue away: then before it, so that the answer can say whether they got through.
        queue_seen_away = dispatch.broker_seems_away()
        try:
            execution = execution_launch(
                dag=dag,
                original_request=data[GOAL_TEXT],
                send_after_response=not queue_seen_away,
            )
        except (PlanError, ClarificationNeeded, DatabaseError) as error:
            raise PlanningError(
                500,
                "DAG created but failed to initialize execution records",
                status="failed",
                dagId=dag.id,
                details=str(error),
            ) from None
        body: dict[str, Any] = {
            "status": "executing",
            "dagId": dag.id,
            "executionId": execution.id,
            "originalRequest": execution.original_request,
            "totalTasks": execution.total_tasks,
            "usage": result.usage,
            "generation_stats": result.generation_stats,
            "message": (
                with_queue_note(EXECUTING_MESSAGE, execution.id)
                if queue_seen_away
                else EXECUTING_MESSAGE
            ),
        }
        return Response(body, status=202)


class DagExperimentsApi(APIView):
    @extend_schema(
        operation_id="dag_experiments",
        request=DagExperimentsIn,
        responses={
            200: DagExperimentsOut,
            400: _ERRORS[400],
            404: _ERRORS[404],
            503: OpenApiResponse(description="The task queue cannot be reached"),
        },
        tags=["planning"],
        description="Plan the same request with every model and temperature, in parallel on "
        "the workers. Each successful plan is stored as its own DAG (id dag_…); failures are "
        "listed with their reason.",
    )
    def post(self, request: Request) -> Response:
        data = validated(DagExperimentsIn, request.data)
        provider_checked(data["provider"], data["models"][0])
        planner_agent(data["agentName"])
        return Response(
            experiments_run(
                base=experiment_base(data),
                models=data["models"],
                temperatures=data["temperatures"],
                owner=owner_for_new_row(acting_user(request.user)),
            )
        )
