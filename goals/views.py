from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.access import acting_user, owner_for_new_row
from config.api.pagination import add_page_headers
from config.api.validation import validated, validated_query
from goals import selectors, services
from goals.serializers import (
    GoalCreateIn,
    GoalListItemOut,
    GoalListQuery,
    GoalOut,
    GoalUpdateIn,
    GoalWithSchedulesOut,
    MessageOut,
    RunTriggeredOut,
    goal_payload,
)
from runs.services import run_trigger

JSON_CONTENT_TYPE = "application/json; charset=utf-8"  # as the JSON renderer sends it

GOAL_FIELDS = {
    "objective": "objective",
    "params": "params",
    "webhookUrl": "webhook_url",
    "status": "status",
}


class GoalListCreateApi(APIView):
    @extend_schema(
        operation_id="list_goals",
        parameters=[GoalListQuery],
        responses=GoalListItemOut(many=True),
        tags=["goals"],
        description=(
            "Goals, newest first, optionally filtered by status; `limit` (1-500, default 100) "
            "and `offset` page through them. The body stays a bare array (clients of the first "
            "version read it so); the page is described in headers: `X-Total-Count` (goals "
            "matching the filter), `X-Limit`, `X-Offset`, and a `Link` header with "
            '`rel="next"` while more remain.'
        ),
    )
    def get(self, request: Request) -> HttpResponse:
        query = validated_query(GoalListQuery, request.query_params)
        limit, offset = query["limit"], query["offset"]
        body, total = selectors.goal_list_json(
            viewer=acting_user(request.user),
            status=query.get("status"),
            limit=limit,
            offset=offset,
        )
        # Already JSON (often straight from the page cache): nothing left for a renderer to do.
        response = HttpResponse(body, content_type=JSON_CONTENT_TYPE)
        return add_page_headers(response, request, total=total, limit=limit, offset=offset)

    @extend_schema(
        operation_id="create_goal", request=GoalCreateIn, responses={201: GoalOut}, tags=["goals"]
    )
    def post(self, request: Request) -> Response:
        data = validated(GoalCreateIn, request.data)
        schedule = data.get("schedule")
        goal = services.goal_create(
            objective=data["objective"],
            params=data.get("params"),
            webhook_url=data.get("webhookUrl"),
            agent_name=data.get("agentName") or None,
            agent_id=data.get("agentId") or None,
            owner=owner_for_new_row(acting_user(request.user)),
            schedule=(
                {"cron_expr": schedule["cronExpr"], "timezone": schedule["timezone"]}
                if schedule
                else None
            ),
        )
        return Response(goal_payload(goal), status=201)


class GoalDetailApi(APIView):
    @extend_schema(operation_id="get_goal", responses=GoalWithSchedulesOut, tags=["goals"])
    def get(self, request: Request, goal_id: str) -> Response:
        goal = selectors.goal_get(
            goal_id=goal_id, viewer=acting_user(request.user), with_schedules=True
        )
        return Response(goal_payload(goal, with_schedules=True))

    @extend_schema(
        operation_id="update_goal", request=GoalUpdateIn, responses=GoalOut, tags=["goals"]
    )
    def patch(self, request: Request, goal_id: str) -> Response:
        data = validated(GoalUpdateIn, request.data)
        goal = selectors.goal_get(goal_id=goal_id, viewer=acting_user(request.user))
        changes = {GOAL_FIELDS[key]: value for key, value in data.items()}
        goal = services.goal_update(goal=goal, changes=changes)
        return Response(goal_payload(goal))

    @extend_schema(operation_id="delete_goal", responses={204: None}, tags=["goals"])
    def delete(self, request: Request, goal_id: str) -> Response:
        goal = selectors.goal_get(goal_id=goal_id, viewer=acting_user(request.user))
        services.goal_delete(goal=goal)
        return Response(status=204)


class GoalPauseApi(APIView):
    @extend_schema(operation_id="pause_goal", request=None, responses=MessageOut, tags=["goals"])
    def post(self, request: Request, goal_id: str) -> Response:
        goal = selectors.goal_get(goal_id=goal_id, viewer=acting_user(request.user))
        services.goal_pause(goal=goal)
        return Response({"message": "Goal paused"})


class GoalResumeApi(APIView):
    @extend_schema(operation_id="resume_goal", request=None, responses=MessageOut, tags=["goals"])
    def post(self, request: Request, goal_id: str) -> Response:
        goal = selectors.goal_get(goal_id=goal_id, viewer=acting_user(request.user))
        services.goal_resume(goal=goal)
        return Response({"message": "Goal resumed"})


class GoalRunApi(APIView):
    @extend_schema(
        operation_id="run_goal",
        request=None,
        responses={200: RunTriggeredOut},
        tags=["goals"],
        description=(
            "Start a run of an active goal on the workers (any body is ignored). 404 for an "
            "unknown goal, 409 when the goal is not active, 429 when MAX_CONCURRENT_RUNS runs "
            "are pending or running."
        ),
    )
    def post(self, request: Request, goal_id: str) -> Response:
        goal = selectors.goal_get(goal_id=goal_id, viewer=acting_user(request.user))
        run = run_trigger(goal_id=goal.id)
        return Response({"runId": run.id, "message": "Run triggered"})
