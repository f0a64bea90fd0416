from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.access import acting_user
from config.api.pagination import add_page_headers
from config.api.validation import validated_query
from runs import selectors, services
from runs.serializers import (
    OutputOut,
    RunListQuery,
    RunWithGoalOut,
    StepOut,
    output_payload,
    run_payload,
    step_payload,
)


class RunListApi(APIView):
    @extend_schema(
        operation_id="list_runs",
        parameters=[RunListQuery],
        responses=RunWithGoalOut(many=True),
        tags=["runs"],
        description=(
            "Runs, newest first, optionally filtered by goal and status; `limit` (1-100, default "
            "50) and `offset` page through them. The body stays a bare array (clients of the "
            "first version read it so); the page is described in headers: `X-Total-Count` (runs "
            "matching the filters), `X-Limit`, `X-Offset`, and a `Link` header with "
            '`rel="next"` while more remain.'
        ),
    )
    def get(self, request: Request) -> Response:
        query = validated_query(RunListQuery, request.query_params)
        limit, offset = query["limit"], query["offset"]
        runs = selectors.run_list(
            viewer=acting_user(request.user),
            goal_id=query.get("goalId"),
            status=query.get("status"),
        )
        total = runs.count()
        response = Response(
            [run_payload(run, with_goal=True) for run in runs[offset : offset + limit]]
        )
        return add_page_headers(response, request, total=total, limit=limit, offset=offset)


class RunDetailApi(APIView):
    @extend_schema(operation_id="get_run", responses=RunWithGoalOut, tags=["runs"])
    def get(self, request: Request, run_id: str) -> Response:
        return Response(
            run_payload(
                selectors.run_get(run_id=run_id, viewer=acting_user(request.user)), with_goal=True
            )
        )

    @extend_schema(operation_id="delete_run", responses={204: None}, tags=["runs"])
    def delete(self, request: Request, run_id: str) -> Response:
        services.run_delete(run=selectors.run_get(run_id=run_id, viewer=acting_user(request.user)))
        return Response(status=204)


class RunStepsApi(APIView):
    @extend_schema(operation_id="get_run_steps", responses=StepOut(many=True), tags=["runs"])
    def get(self, request: Request, run_id: str) -> Response:
        run = selectors.run_get(run_id=run_id, viewer=acting_user(request.user))
        return Response([step_payload(step) for step in selectors.run_steps(run=run)])


class RunOutputsApi(APIView):
    @extend_schema(
        operation_id="get_run_outputs",
        responses=OutputOut(many=True),
        tags=["runs"],
        description="What the run produced: its summary, files written, webhooks and e-mails.",
    )
    def get(self, request: Request, run_id: str) -> Response:
        run = selectors.run_get(run_id=run_id, viewer=acting_user(request.user))
        return Response([output_payload(o) for o in selectors.run_outputs(run=run)])
