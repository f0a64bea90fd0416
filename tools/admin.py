"""Admin for the record of side effects done (read-only: the tools write it)."""

from __future__ import annotations

from django.contrib import admin

from config.admin_tools import ReadOnlyAdminMixin, status_badge
from tools.models import ToolEffect


@admin.register(ToolEffect)
class ToolEffectAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("key", "tool", "status_badge", "created_at", "updated_at")
    list_filter = ("tool", "status")
    search_fields = ("key",)
    date_hierarchy = "created_at"

    @admin.display(description="status", ordering="status")
    def status_badge(self, effect: ToolEffect):
        return status_badge(effect.status)
