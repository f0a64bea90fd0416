"""Tool parameters: one pydantic model per tool gives both the JSON Schema and the validation.

The generated schemas (`GET /api/v1/tools`) have the shape existing clients read: no titles, no
`$ref`s, `additionalProperties: false`, defaults listed, optional fields left out of `required`.
Optional fields also accept `null` (models often send it for "not given"); it means absent.
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticCustomError, core_schema

MAX_EMAIL_RECIPIENTS = 50


# --- Field types --------------------------------------------------------------------------------


def check_http_url(value: str) -> str:
    value = value.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise PydanticCustomError("url", "Not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("url", "Must be an absolute http:// or https:// URL")
    return value


HttpUrl = Annotated[
    str, AfterValidator(check_http_url), WithJsonSchema({"type": "string", "format": "uri"})
]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "Must not be empty")
    return value


# The schema says plain `string`, as clients expect; emptiness is still refused.
NonBlank = Annotated[str, AfterValidator(_not_blank)]


def _check_email(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("email", "Must be an e-mail address (a string)")
    value = value.strip()
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise PydanticCustomError(
            "email",
            "'{value}' is not a valid e-mail address: {reason}",
            {
                "value": value,
                "reason": str(error),
            },
        ) from None
    return value


EmailAddress = Annotated[
    str,
    BeforeValidator(_check_email),
    WithJsonSchema({"type": "string", "format": "email"}),
]

_EMAIL_SCHEMA = {"type": "string", "format": "email"}


def _email_or_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [_check_email(value)]
    if isinstance(value, list | tuple):
        return [_check_email(item) for item in value]
    raise PydanticCustomError("email_list", "Must be an e-mail address or a list of them")


EmailOrList = Annotated[
    list[str],
    BeforeValidator(_email_or_list),
    WithJsonSchema({"anyOf": [_EMAIL_SCHEMA, {"type": "array", "items": _EMAIL_SCHEMA}]}),
]


def _string_or_object(value: Any) -> Any:
    if isinstance(value, str | dict):
        return value
    raise PydanticCustomError("url_item", "Must be a URL string or an object holding a URL")


UrlItem = Annotated[
    Any,
    AfterValidator(_string_or_object),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "object", "additionalProperties": {}}]}),
]

JsonObject = Annotated[
    dict[str, Any], WithJsonSchema({"type": "object", "additionalProperties": {}})
]


class ToolParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- One model per tool -------------------------------------------------------------------------


class WebSearchParams(ToolParams):
    query: NonBlank = Field(
        description=(
            "What to search for. Several searches can be given one per line (list markers "
            "are ignored; a quoted phrase on a line is searched on its own)."
        ),
    )
    limit: int = Field(10, ge=1, le=20, description="Results to keep for each search line.")


class FetchPageParams(ToolParams):
    url: HttpUrl = Field(description="Address of the web page or PDF to read.")
    maxLength: int = Field(
        10000, ge=100, le=50000, description="Cut the extracted text to this many characters."
    )


class FetchUrlsParams(ToolParams):
    urls: list[UrlItem] = Field(
        description=(
            "URLs to read: plain strings, or objects with a url/URL/link/href/uri field "
            "(for example search results)."
        )
    )


class WriteFileParams(ToolParams):
    path: NonBlank = Field(description="Where to write, relative to the artifacts folder.")
    content: str = Field(description="Text to store in the file.")
    mode: Literal["overwrite", "append"] = Field(
        "overwrite", description="Replace the file, or add to its end."
    )


class ReadFileParams(ToolParams):
    path: NonBlank = Field(description="File to read, relative to the artifacts folder.")
    maxLength: int = Field(
        50000, ge=1, le=100000, description="Read at most this many bytes of the file."
    )


class SendWebhookParams(ToolParams):
    url: HttpUrl = Field(description="Endpoint that receives the JSON POST.")
    payload: JsonObject = Field(description="JSON object sent as the request body.")
    headers: dict[str, str] | None = Field(
        None, description="Extra request headers (hop-by-hop headers and Host are dropped)."
    )


class EmailAttachment(ToolParams):
    filename: NonBlank = Field(description="Name the recipient sees.")
    path: str | None = Field(
        None, description="A file in the artifacts folder to attach (instead of content)."
    )
    content: str | None = Field(
        None, description="The attachment itself, as text or base64 (instead of path)."
    )
    contentType: str | None = Field(
        None, description='MIME type such as "text/csv" or "application/pdf".'
    )
    encoding: Literal["base64", "utf-8"] | None = Field(
        None, description="How content is encoded; utf-8 text when not given."
    )

    @model_validator(mode="after")
    def _one_source(self) -> EmailAttachment:
        if (self.path is None) == (self.content is None):
            raise PydanticCustomError("attachment_source", "Give exactly one of path or content")
        return self


class SendEmailParams(ToolParams):
    to: EmailAddress = Field(description="Main recipient.")
    subject: str = Field(description="Subject line.")
    body: str = Field(description="Message text (HTML when html is true).")
    cc: EmailOrList | None = Field(None, description="Copy recipient(s): one address or a list.")
    bcc: EmailOrList | None = Field(
        None, description="Blind-copy recipient(s): one address or a list."
    )
    html: bool = Field(False, description="Send body as HTML (a plain-text part is added).")
    attachments: list[EmailAttachment] | None = Field(
        None, description="Files to attach, from the artifacts folder or given inline."
    )

    @model_validator(mode="after")
    def _recipient_limit(self) -> SendEmailParams:
        total = 1 + len(self.cc or []) + len(self.bcc or [])
        if total > MAX_EMAIL_RECIPIENTS:
            raise PydanticCustomError(
                "too_many_recipients",
                "At most {limit} recipients in total (to, cc and bcc)",
                {"limit": MAX_EMAIL_RECIPIENTS},
            )
        return self


# --- Schema generation --------------------------------------------------------------------------


class _ToolSchemaGenerator(GenerateJsonSchema):
    """Pydantic's JSON Schema, in the shape clients expect (no titles, no `$ref`s)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def model_schema(self, schema: core_schema.ModelSchema) -> dict[str, Any]:
        json_schema = super().model_schema(schema)
        json_schema.pop("title", None)
        json_schema.pop("description", None)  # model docstrings are for developers
        return json_schema

    def nullable_schema(self, schema: core_schema.NullableSchema) -> dict[str, Any]:
        # `None` only stands for "not given"; the schema shows the real type.
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> dict[str, Any]:
        json_schema = super().default_schema(schema)
        if json_schema.get("default", ...) is None:
            json_schema.pop("default")
        return json_schema


def parameters_schema(model: type[ToolParams]) -> dict[str, Any]:
    """The JSON Schema of `model`, with every `$ref` inlined."""
    raw = model.model_json_schema(schema_generator=_ToolSchemaGenerator)
    definitions = raw.pop("$defs", {})
    return _inline(raw, definitions)


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = copy.deepcopy(definitions[ref.removeprefix("#/$defs/")])
            extra = {key: value for key, value in node.items() if key != "$ref"}
            return _inline({**target, **extra}, definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


# --- Validation ---------------------------------------------------------------------------------


def validation_issues(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as `[{path, message}]`, without pydantic's internal type labels."""
    issues: list[dict[str, Any]] = []
    for item in error.errors(include_url=False):
        path = [part for part in item["loc"] if isinstance(part, int) or _is_field_name(part)]
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "Unknown parameter (not allowed)"
        elif item["type"] == "missing":
            message = "Required"
        issue = {"path": path, "message": message}
        if issue not in issues:
            issues.append(issue)
    return issues


_UNION_LABEL = re.compile(r"^[a-z-]+\[.*\]$")


def _is_field_name(part: str) -> bool:
    # Union members show up in locations as labels such as `function-after[...]`.
    return not _UNION_LABEL.match(part)
