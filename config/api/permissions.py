from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions
from rest_framework.request import Request

from config.access import acting_user


class ApiAccess(BasePermission):
    """Authenticated users only, unless `API_AUTH_REQUIRED=false` opts a trusted set-up out."""

    message = "Authentication credentials were not provided."

    def has_permission(self, request: Request, view: object) -> bool:
        if not settings.API_AUTH_REQUIRED:
            return True
        return bool(request.user and request.user.is_authenticated)


class SharedConfigPermission(DjangoModelPermissions):
    """Shared configuration (agents and their active versions): everyone the API lets in may
    read it; changing it needs the Django model permission for the method (`add_`, `change_`,
    `delete_<model>`), which superusers have and groups can grant.

    Views set `permission_model`, and may map a method to another action in
    `permission_actions` (activating an agent is a change: `{"POST": "change"}`).
    """

    message = "You do not have permission to change this shared configuration."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not ApiAccess().has_permission(request, view):
            return False
        if request.method in SAFE_METHODS:
            return True
        user = acting_user(request.user)
        if user is None or not user.is_authenticated:
            # Only the anonymous local user with no superuser to act as gets here.
            return not settings.API_AUTH_REQUIRED
        model = view.permission_model
        action = getattr(view, "permission_actions", {}).get(request.method)
        if action is not None:
            perms = [f"{model._meta.app_label}.{action}_{model._meta.model_name}"]
        else:
            # A request that reached a view has a method (the stubs allow None).
            perms = self.get_required_permissions(cast(str, request.method), model)
        return user.has_perms(perms)
