from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.access import acting_user
from config.api.exceptions import PARAMS_LABEL
from config.api.validation import validated, validated_query
from config.cron import describe_cron
from dags import selectors, services
from dags.serializers import (
    DagDeletedOut,
    DagExecutionListOut,
    DagExecutionsQuery,
    DagListOut,
    DagListQuery,
    DagOut,
    DagUpdateIn,
    ExecutionDeletedOut,
    ExecutionDetailOut,
    ExecutionListOut,
    ExecutionListQuery,
    ScheduledDagOut,
    SubStepListOut,
    dag_payload,
    execution_payload,
    sub_step_payload,
)

DAG_FIELDS = {
    "status": "status",
    "result": "result",
    "params": "params",
    "dagTitle": "dag_title",
    "cronSchedule": "cron_schedule",
    "scheduleActive": "schedule_active",
    "timezone": "timezone",
}


class DagListApi(APIView):
    @extend_schema(
        operation_id="list_dags", parameters=[DagListQuery], responses=DagListOut, tags=["dags"]
    )
    def get(self, request: Request) -> Response:
        query = validated_query(DagListQuery, request.query_params)
        limit, offset = query["limit"], query["offset"]
        dags = list(
            selectors.dag_list(viewer=acting_user(request.user), status=query.get("status"))[
                offset : offset + limit
            ]
        )
        return Response(
            {
                "dags": [dag_payload(dag) for dag in dags],
                "pagination": {"limit": limit, "offset": offset, "count": len(dags)},
            }
        )


class ScheduledDagListApi(APIView):
    @extend_schema(
        operation_id="list_scheduled_dags",
        responses=ScheduledDagOut(many=True),
        tags=["dags"],
        description="DAGs with a cron schedule (active or not), each described in English.",
    )
    def get(self, request: Request) -> Response:
        return Response(
            [
                {
                    "id": dag.id,
                    "dag_title": dag.dag_title,
                    "cron_schedule": dag.cron_schedule,
                    "schedule_description": describe_cron(dag.cron_schedule),
                    "schedule_active": dag.schedule_active,
                    "timezone": dag.timezone,
                    "schedule_error": dag.schedule_error,
                }
                for dag in selectors.dag_list_scheduled(viewer=acting_user(request.user))
            ]
        )


class DagDetailApi(APIView):
    @extend_schema(operation_id="get_dag", responses=DagOut, tags=["dags"])
    def get(self, request: Request, dag_id: str) -> Response:
        return Response(
            dag_payload(selectors.dag_get(dag_id=dag_id, viewer=acting_user(request.user)))
        )

    @extend_schema(operation_id="update_dag", request=DagUpdateIn, responses=DagOut, tags=["dags"])
    def patch(self, request: Request, dag_id: str) -> Response:
        data = validated(DagUpdateIn, request.data, label=PARAMS_LABEL)
        dag = selectors.dag_get(dag_id=dag_id, viewer=acting_user(request.user))
        changes = {DAG_FIELDS[key]: value for key, value in data.items()}
        return Response(dag_payload(services.dag_update(dag=dag, changes=changes)))

    @extend_schema(operation_id="delete_dag", responses=DagDeletedOut, tags=["dags"])
    def delete(self, request: Request, dag_id: str) -> Response:
        services.dag_delete(dag=selectors.dag_get(dag_id=dag_id, viewer=acting_user(request.user)))
        return Response({"message": "DAG deleted successfully", "dagId": dag_id})


class DagDeleteAliasApi(DagDetailApi):
    """`DELETE /dag/:id`, an alias of `DELETE /dags/:id` kept for existing clients."""

    http_method_names = ["delete", "options"]

    @extend_schema(operation_id="delete_dag_alias", responses=DagDeletedOut, tags=["dags"])
    def delete(self, request: Request, dag_id: str) -> Response:
        return super().delete(request, dag_id)


class DagExecutionsApi(APIView):
    @extend_schema(
        operation_id="list_dag_executions_for_dag",
        parameters=[DagExecutionsQuery],
        responses=DagExecutionListOut,
        tags=["executions"],
    )
    def get(self, request: Request, dag_id: str) -> Response:
        query = validated_query(DagExecutionsQuery, request.query_params, label=PARAMS_LABEL)
        dag = selectors.dag_get(dag_id=dag_id, viewer=acting_user(request.user))
        executions = selectors.execution_list_for_dag(
            dag=dag, viewer=acting_user(request.user), status=query.get("status")
        )
        limit, offset = query["limit"], query["offset"]
        return Response(
            {
                "executions": [execution_payload(e) for e in executions[offset : offset + limit]],
                "total": executions.count(),
                "limit": limit,
                "offset": offset,
            }
        )


class ExecutionListApi(APIView):
    @extend_schema(
        operation_id="list_dag_executions",
        parameters=[ExecutionListQuery],
        responses=ExecutionListOut,
        tags=["executions"],
    )
    def get(self, request: Request) -> Response:
        query = validated_query(ExecutionListQuery, request.query_params)
        limit, offset = query["limit"], query["offset"]
        executions = list(
            selectors.execution_list(viewer=acting_user(request.user), status=query.get("status"))[
                offset : offset + limit
            ]
        )
        return Response(
            {
                "executions": [execution_payload(e, with_title=True) for e in executions],
                "pagination": {"limit": limit, "offset": offset, "count": len(executions)},
            }
        )


class ExecutionDetailApi(APIView):
    @extend_schema(
        operation_id="get_dag_execution", responses=ExecutionDetailOut, tags=["executions"]
    )
    def get(self, request: Request, execution_id: str) -> Response:
        execution = selectors.execution_get(
            execution_id=execution_id, viewer=acting_user(request.user), with_title=True
        )
        payload = execution_payload(execution, with_title=True)
        payload["subSteps"] = [
            sub_step_payload(s) for s in selectors.execution_sub_steps(execution=execution)
        ]
        return Response(payload)

    @extend_schema(
        operation_id="delete_dag_execution", responses=ExecutionDeletedOut, tags=["executions"]
    )
    def delete(self, request: Request, execution_id: str) -> Response:
        execution = selectors.execution_get(
            execution_id=execution_id, viewer=acting_user(request.user)
        )
        deleted = services.execution_delete(execution=execution)
        return Response(
            {
                "message": "DAG execution deleted successfully",
                "executionId": execution_id,
                "cascadeInfo": {"relatedSubStepsDeleted": deleted},
            }
        )


class ExecutionSubStepsApi(APIView):
    @extend_schema(
        operation_id="get_dag_execution_sub_steps",
        responses=SubStepListOut,
        tags=["executions"],
    )
    def get(self, request: Request, execution_id: str) -> Response:
        execution = selectors.execution_get(
            execution_id=execution_id, viewer=acting_user(request.user)
        )
        return Response(
            {
                "executionId": execution.id,
                "subSteps": [
                    sub_step_payload(s) for s in selectors.execution_sub_steps(execution=execution)
                ],
            }
        )
