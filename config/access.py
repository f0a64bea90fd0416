"""Who may see and change owned rows: the one rule every surface applies.

Goals, runs, DAGs, executions and artifact records carry an `owner` (a user). Staff and
superusers see and change every row; everyone else only the rows they own. Selectors filter
through `visible_to`, so a row someone may not see looks exactly like a row that does not exist.

With `API_AUTH_REQUIRED=false` an anonymous request acts as one trusted local user, the first
superuser (`acting_user`). When no superuser exists yet, it acts as nobody: it sees only rows
without an owner and creates rows without one; those rows are visible to staff too, so the first
superuser created later sees them. No user is ever created behind the operator's back.

This module is generic (it imports no app): it knows only the user model and a field name.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import Model, QuerySet

OWNER_FIELD = "owner"

M = TypeVar("M", bound=Model)


def sees_everything(viewer: Any) -> bool:
    """Staff and superusers see and change every owned row."""
    if viewer is None or not getattr(viewer, "is_authenticated", False):
        return False
    return bool(viewer.is_active and (viewer.is_staff or viewer.is_superuser))


def trusted_local_user() -> Any | None:
    """The user anonymous requests act as when `API_AUTH_REQUIRED=false`: the first active
    superuser (lowest id), or None when there is none."""
    return get_user_model().objects.filter(is_superuser=True, is_active=True).order_by("pk").first()


def acting_user(user: Any) -> Any:
    """The user a request acts as: itself when authenticated; with the API's authentication
    switched off, the trusted local user (or the anonymous user when there is none)."""
    if user is not None and getattr(user, "is_authenticated", False):
        return user
    if not settings.API_AUTH_REQUIRED:
        return trusted_local_user() or user
    return user


def owner_for_new_row(viewer: Any) -> Any | None:
    """The owner to store on a row `viewer` creates (None for the anonymous local user)."""
    if viewer is not None and getattr(viewer, "is_authenticated", False):
        return viewer
    return None


def visible_to(
    queryset: QuerySet[M], viewer: Any, *, owner_field: str = OWNER_FIELD
) -> QuerySet[M]:
    """The rows of `queryset` that `viewer` may see.

    `owner_field` is the lookup to the owning user (for example `"goal__owner"` for rows owned
    through a parent).
    """
    if sees_everything(viewer):
        return queryset
    if viewer is not None and getattr(viewer, "is_authenticated", False):
        return queryset.filter(**{owner_field: viewer})
    if not settings.API_AUTH_REQUIRED:
        # The anonymous local user with no superuser to act as: the rows nobody owns.
        return queryset.filter(**{f"{owner_field}__isnull": True})
    return queryset.none()


def may_see(row: Model, viewer: Any, *, owner_field: str = OWNER_FIELD) -> bool:
    """Whether `viewer` may see one already-loaded row (same rule as `visible_to`)."""
    if sees_everything(viewer):
        return True
    owner_id = getattr(row, f"{owner_field}_id")
    if viewer is not None and getattr(viewer, "is_authenticated", False):
        return owner_id == viewer.pk
    return not settings.API_AUTH_REQUIRED and owner_id is None


def owner_field(related_name: str) -> models.ForeignKey:
    """The `owner` column of an owned model.

    SET_NULL, not CASCADE: deleting a user account must not silently destroy the goals, runs,
    executions and cost history they made (deactivate users instead; Django's advice). Their
    rows become ownerless, which only staff see, and staff can reassign them in the admin.
    Nullable also because rows made before owners existed, or by the anonymous local user with
    no superuser to act as, have no owner.
    """
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name=related_name,
        help_text="Who made it: they see and change it; staff see and change everything.",
    )
