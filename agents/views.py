from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import selectors, services
from agents.models import Agent
from agents.serializers import AGENT_FIELDS, AgentIn, AgentListQuery, AgentOut, agent_payload
from config.api.permissions import SharedConfigPermission
from config.api.validation import validated, validated_query


def _model_changes(data: dict) -> dict:
    return {AGENT_FIELDS[key]: value for key, value in data.items() if key in AGENT_FIELDS}


class AgentListCreateApi(APIView):
    permission_classes = [SharedConfigPermission]
    permission_model = Agent

    @extend_schema(
        operation_id="list_agents",
        parameters=[AgentListQuery],
        responses=AgentOut(many=True),
        tags=["agents"],
    )
    def get(self, request: Request) -> Response:
        query = validated_query(AgentListQuery, request.query_params)
        active = None if "active" not in query else query["active"] == "true"
        agents = selectors.agent_list(name=query.get("name"), active=active)
        return Response([agent_payload(agent) for agent in agents])

    @extend_schema(
        operation_id="create_agent", request=AgentIn, responses={201: AgentOut}, tags=["agents"]
    )
    def post(self, request: Request) -> Response:
        data = validated(AgentIn, request.data)
        agent = services.agent_create(**_model_changes(data))
        return Response(agent_payload(agent), status=201)


class AgentDetailApi(APIView):
    permission_classes = [SharedConfigPermission]
    permission_model = Agent

    @extend_schema(operation_id="get_agent", responses=AgentOut, tags=["agents"])
    def get(self, request: Request, agent_id: str) -> Response:
        return Response(agent_payload(selectors.agent_get(agent_id=agent_id)))

    @extend_schema(
        operation_id="update_agent",
        request=AgentIn(partial=True),
        responses=AgentOut,
        tags=["agents"],
    )
    def patch(self, request: Request, agent_id: str) -> Response:
        data = validated(AgentIn, request.data, partial=True)
        agent = selectors.agent_get(agent_id=agent_id)
        agent = services.agent_update(agent=agent, changes=_model_changes(data))
        return Response(agent_payload(agent))

    @extend_schema(operation_id="delete_agent", responses={204: None}, tags=["agents"])
    def delete(self, request: Request, agent_id: str) -> Response:
        services.agent_delete(agent=selectors.agent_get(agent_id=agent_id))
        return Response(status=204)


class AgentActivateApi(APIView):
    # Activating a version changes the prompt every later execution runs with.
    permission_classes = [SharedConfigPermission]
    permission_model = Agent
    permission_actions = {"POST": "change"}

    @extend_schema(operation_id="activate_agent", request=None, responses=AgentOut, tags=["agents"])
    def post(self, request: Request, agent_id: str) -> Response:
        agent = services.agent_activate(agent=selectors.agent_get(agent_id=agent_id))
        return Response(agent_payload(agent))


class AgentResolveApi(APIView):
    @extend_schema(
        operation_id="resolve_agent",
        parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH)],
        responses=AgentOut,
        tags=["agents"],
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(agent_payload(selectors.agent_require_active(name=name)))
