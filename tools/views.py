from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.validation import validated_query
from config.errors import NotFound
from tools.base import ToolNotFound
from tools.registry import get_tool, tool_definitions
from tools.serializers import TOOL_DEFINITION, ToolListQuery


class ToolListApi(APIView):
    @extend_schema(
        operation_id="list_tools",
        parameters=[ToolListQuery],
        responses={
            200: OpenApiResponse(
                {"oneOf": [{"type": "array", "items": TOOL_DEFINITION}, TOOL_DEFINITION]},
                description=(
                    "Every tool in registry order, in the OpenAI function-calling format. "
                    "With a non-empty `?name=`, that one tool's definition as a single object."
                ),
            ),
            404: OpenApiResponse(description='`{"error": "Tool not found: <name>"}`'),
        },
        tags=["tools"],
    )
    def get(self, request: Request) -> Response:
        query = validated_query(ToolListQuery, request.query_params)
        name = query.get("name")
        if not name:
            return Response(tool_definitions())
        try:
            return Response(get_tool(name).definition())
        except ToolNotFound as error:
            raise NotFound(error.message) from None
