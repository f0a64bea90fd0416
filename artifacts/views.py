from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from artifacts import selectors
from config.access import acting_user


class ArtifactListApi(APIView):
    @extend_schema(
        operation_id="list_artifacts",
        responses={200: OpenApiResponse({"type": "array", "items": {"type": "string"}})},
        tags=["artifacts"],
        description="Files in the artifacts folder that the caller may see (those written by "
        "their executions and runs; staff see all), sub-folders as `folder/name`, sorted.",
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.artifact_list(viewer=acting_user(request.user)))


class ArtifactDetailApi(APIView):
    @extend_schema(
        operation_id="get_artifact",
        responses={200: OpenApiResponse(OpenApiTypes.STR, description="The raw file content.")},
        tags=["artifacts"],
    )
    def get(self, request: Request, name: str) -> HttpResponse:
        content = selectors.artifact_read(name=name, viewer=acting_user(request.user))
        try:
            content.decode("utf-8")
            content_type = "text/plain; charset=utf-8"
        except UnicodeDecodeError:
            content_type = "application/octet-stream"
        return HttpResponse(content, content_type=content_type)
