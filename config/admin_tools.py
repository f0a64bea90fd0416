"""Small helpers shared by the apps' admin modules: readable JSON, short text, cron fields."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib.admin.utils import quote
from django.db import models
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from config.access import OWNER_FIELD, visible_to
from goals.cron import CronError, describe_cron, normalize_cron, validate_timezone


class PrettyJSONFormField(forms.JSONField):
    """A JSON form field that shows its value indented, so nested objects stay readable."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


JSON_FIELD_OVERRIDES = {
    models.JSONField: {
        "form_class": PrettyJSONFormField,
        "widget": forms.Textarea(
            attrs={"rows": 10, "cols": 90, "style": "font-family: monospace; width: 90%;"}
        ),
    }
}


def pretty_json(value: Any) -> SafeString | str:
    """A read-only rendering of a JSON value in an indented, scrollable block."""
    if value is None:
        return "-"
    text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
    return format_html(
        '<pre style="white-space: pre-wrap; max-height: 32em; overflow: auto; margin: 0;">{}</pre>',
        text,
    )


def shorten(text: str | None, limit: int = 80) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    """The URL of one of a model's admin views. Object ids are quoted as the admin expects:
    it reads `_XX` as an escaped character, and our ids may contain `_3F` and the like."""
    return reverse(
        f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}",
        args=[quote(arg) for arg in args],
    )


def admin_link(obj: models.Model | None, label: str | None = None) -> SafeString | str:
    """A link to the object's admin change page (plain text when there is no object)."""
    if obj is None:
        return "-"
    url = admin_url(type(obj), "change", obj.pk)
    return format_html('<a href="{}">{}</a>', url, label or str(obj))


def changelist_link(model: type[models.Model], label: str, **filters: Any) -> SafeString:
    """A link to a model's admin list, filtered by the given lookups."""
    url = admin_url(model, "changelist")
    query = urlencode(filters)
    return format_html('<a href="{}?{}">{}</a>', url, query, label)


def clean_cron(value: str) -> str:
    """Form-level cron validation with the project's one cron grammar."""
    try:
        return normalize_cron(value)
    except CronError as error:
        raise forms.ValidationError(str(error)) from None


def clean_timezone(value: str) -> str:
    try:
        return validate_timezone(value)
    except CronError as error:
        raise forms.ValidationError(str(error)) from None


def cron_description(expression: str | None) -> str:
    return describe_cron(expression) if expression else "-"


class CascadeDeleteMixin:
    """Lets a parent be deleted with its children where the children's admin is read-only.

    The delete confirmation asks for delete permission on every related object it lists.
    Rows the workers own (steps, sub-steps, events, ticks) have a view-only admin, yet they
    belong to their parent and go with it, through the parent's delete service.
    """

    def get_deleted_objects(self, objs, request):
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        owned = {
            str(model._meta.verbose_name)
            for model, model_admin in self.admin_site._registry.items()
            if isinstance(model_admin, ReadOnlyAdminMixin)
        }
        perms_needed = {name for name in perms_needed if str(name) not in owned}
        return to_delete, model_count, perms_needed, protected


class ReadOnlyAdminMixin:
    """View only (deletion stays as the admin class decides): the workers own these rows."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class OwnedAdminMixin:
    """Admin for a model with an `owner` (config/access.py): the same visibility rule as every
    other surface (admin users are staff, so they see all), the owner as a column, a filter and
    a field, and the signed-in user as the owner of rows added here."""

    def get_queryset(self, request):
        return visible_to(super().get_queryset(request), request.user).select_related("owner")

    def get_list_display(self, request):
        columns = tuple(super().get_list_display(request))
        return columns if OWNER_FIELD in columns else (*columns, OWNER_FIELD)

    def get_list_filter(self, request):
        filters = tuple(super().get_list_filter(request))
        return filters if OWNER_FIELD in filters else (*filters, OWNER_FIELD)

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        named = {name for _title, options in fieldsets for name in _flat(options["fields"])}
        if OWNER_FIELD not in named:
            fieldsets.append(("Owner", {"fields": (OWNER_FIELD,)}))
        return fieldsets

    def save_model(self, request, obj, form, change: bool) -> None:
        if not change and getattr(obj, f"{OWNER_FIELD}_id") is None:
            setattr(obj, OWNER_FIELD, request.user)
        super().save_model(request, obj, form, change)


def _flat(fields: Any) -> list[str]:
    names: list[str] = []
    for entry in fields:
        names.extend(entry if isinstance(entry, list | tuple) else [entry])
    return names
