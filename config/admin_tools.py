"""Small helpers shared by the apps' admin modules: readable JSON and Markdown, status badges,
short text, cron fields, object buttons."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from config.access import OWNER_FIELD, visible_to
from config.cron import CronError, describe_cron, normalize_cron, validate_timezone
from config.errors import DomainError
from config.markdown import render_markdown

if TYPE_CHECKING:
    # The mixins below are only ever combined with `admin.ModelAdmin`; telling the type checker
    # so lets it check their `super()` calls and the admin attributes they use.
    _ModelAdminBase = admin.ModelAdmin[Any]
else:
    _ModelAdminBase = object


class PrettyJSONFormField(forms.JSONField):
    """A JSON form field that shows its value indented, so nested objects stay readable."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


JSON_FIELD_OVERRIDES: dict[type[models.Field[Any, Any]], dict[str, Any]] = {
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


def json_details(value: Any, summary: str = "JSON", *, open_: bool = False) -> SafeString | str:
    """A JSON value pretty-printed inside a `<details>` block, folded unless `open_`: machine
    data stays one line tall until someone wants to read it."""
    if value is None or value == {} or value == []:
        return "-"
    return format_html(
        "<details{}><summary>{}</summary>{}</details>",
        " open" if open_ else "",
        summary,
        pretty_json(value),
    )


def markdown_block(text: str | None) -> SafeString | str:
    """Text written by a model, rendered as sanitized Markdown in a box of bounded height (a long
    report scrolls inside it instead of stretching the page)."""
    if not text:
        return "-"
    return format_html(
        '<div class="admin-markdown" style="max-height: 36em; overflow: auto; '
        "max-width: 60em; padding: 0 0.8em; border: 1px solid var(--hairline-color, #ddd); "
        'border-radius: 4px;">{}</div>',
        render_markdown(text),
    )


def plain_block(text: str | None) -> SafeString | str:
    """Text shown as written (line breaks kept, nothing interpreted), in a bounded box."""
    if not text:
        return "-"
    return format_html(
        '<div style="white-space: pre-wrap; max-height: 16em; overflow: auto; max-width: 60em;">'
        "{}</div>",
        text,
    )


STATUS_COLOURS = {
    "completed": "#1e7e34",
    "success": "#1e7e34",
    "active": "#1e7e34",
    "started": "#1e7e34",
    "ok": "#1e7e34",
    "done": "#1e7e34",
    "running": "#8a6d00",
    "pending": "#5a6268",
    "waiting": "#117a8b",
    "partial": "#b35900",
    "suspended": "#b35900",
    "skipped": "#5a6268",
    "paused": "#5a6268",
    "inactive": "#5a6268",
    "archived": "#495057",
    "failed": "#c82333",
    "error": "#c82333",
    "cancelled": "#6f42c1",
}


def status_badge(status: str | None) -> SafeString | str:
    """A status as a coloured badge that still reads as text (colour is never the only cue)."""
    if not status:
        return "-"
    colour = STATUS_COLOURS.get(status, "#495057")
    return format_html(
        '<span style="background: {}; color: #fff; border-radius: 9px; padding: 1px 8px; '
        'font-size: 11px; white-space: nowrap;">{}</span>',
        colour,
        status,
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


class CascadeDeleteMixin(_ModelAdminBase):
    """Lets a parent be deleted with its children where the children's admin is read-only.

    The delete confirmation asks for delete permission on every related object it lists.
    Rows the workers own (steps, sub-steps, events, ticks) have a view-only admin, yet they
    belong to their parent and go with it, through the parent's delete service.
    """

    def get_deleted_objects(self, objs, request):
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        site = self.admin_site
        owned = {
            str(model._meta.verbose_name)
            for model in apps.get_models()
            if site.is_registered(model)
            and isinstance(site.get_model_admin(model), ReadOnlyAdminMixin)
        }
        perms_needed = {name for name in perms_needed if str(name) not in owned}
        return to_delete, model_count, perms_needed, protected


# The inline template of rows the workers write: one compact table, a link column per row.
READONLY_TABLE = "admin/edit_inline/readonly_table.html"


class ReadOnlyAdminMixin:
    """View only (deletion stays as the admin class decides): the workers own these rows."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class OwnedAdminMixin(_ModelAdminBase):
    """Admin for a model with an `owner` (config/access.py): the same visibility rule as every
    other surface (admin users are staff, so they see all), the owner as a column, a filter and
    a field (searched, as the user admin searches users), and the signed-in user as the owner
    of rows added here."""

    def get_queryset(self, request):
        return visible_to(super().get_queryset(request), request.user).select_related("owner")

    def get_list_display(self, request):
        columns = tuple(super().get_list_display(request))
        return columns if OWNER_FIELD in columns else (*columns, OWNER_FIELD)

    def get_list_filter(self, request):
        filters = tuple(super().get_list_filter(request))
        named = {entry[0] if isinstance(entry, tuple) else entry for entry in filters}
        if OWNER_FIELD in named:
            return filters
        # Only the users who own rows here, not every account.
        return (*filters, (OWNER_FIELD, admin.RelatedOnlyFieldListFilter))

    def get_autocomplete_fields(self, request):
        # A search box rather than a select that lists every user on every change page.
        fields = tuple(super().get_autocomplete_fields(request))
        return fields if OWNER_FIELD in fields else (*fields, OWNER_FIELD)

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


class ObjectButtonsMixin(_ModelAdminBase):
    """POST buttons on a change page (beside History) that run one service on the object.

    A subclass lists `object_buttons` as (name, label) pairs and defines `press_<name>(request,
    obj) -> str` (the success message; a DomainError becomes an error message) and may narrow
    `buttons_for(obj)`. Pressing needs the model's change permission (the admin may still show
    the page read-only); the form carries Django's CSRF token.
    """

    change_form_template = "admin/object_buttons_change_form.html"
    object_buttons: tuple[tuple[str, str], ...] = ()

    def buttons_for(self, obj: Any) -> list[str]:
        return [name for name, _label in self.object_buttons]

    def may_press(self, request: HttpRequest, obj: models.Model) -> bool:
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def _button_url_name(self) -> str:
        return f"{self.model._meta.app_label}_{self.model._meta.model_name}_button"

    def get_urls(self):
        custom = [
            path(
                "<path:object_id>/press/<slug:button>/",
                self.admin_site.admin_view(self.object_button_view),
                name=self._button_url_name(),
            )
        ]
        return custom + super().get_urls()

    def object_button_view(self, request: HttpRequest, object_id: str, button: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, unquote(object_id))
        if obj is None or button not in dict(self.object_buttons):
            raise Http404("No such object or button")
        if not (self.has_view_permission(request, obj) and self.may_press(request, obj)):
            raise PermissionDenied
        try:
            text = getattr(self, f"press_{button}")(request, obj)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, text, messages.SUCCESS)
        return redirect(admin_url(self.model, "change", obj.pk))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.may_press(request, obj):
            labels = dict(self.object_buttons)
            context["object_buttons"] = [
                {
                    "label": labels[name],
                    "url": reverse(
                        f"{self.admin_site.name}:{self._button_url_name()}",
                        args=[quote(obj.pk), name],
                    ),
                }
                for name in self.buttons_for(obj)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)
