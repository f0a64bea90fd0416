"""Admin for the artifact records: who wrote which file (the files stay in ARTIFACTS_DIR)."""

from __future__ import annotations

from django.contrib import admin

from artifacts.models import Artifact
from config.admin_tools import OwnedAdminMixin, ReadOnlyAdminMixin, admin_link


@admin.register(Artifact)
class ArtifactAdmin(OwnedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("path", "size", "written_by", "updated_at")
    list_filter = ("updated_at",)
    search_fields = ("path", "owner__username", "execution__id", "run__id")
    date_hierarchy = "updated_at"
    fields = ("path", "size", "execution", "run", "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="written by")
    def written_by(self, artifact: Artifact):
        return admin_link(artifact.execution or artifact.run)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("execution", "run")
