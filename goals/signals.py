"""Every save and delete of a row the goal list shows retires the cached list pages.

Writes that bypass signals (`QuerySet.update()`) call `lists_changed()` themselves;
`goals/tests/test_list_cache.py` lists those call sites and fails on a new one without it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save

from agents.models import Agent
from config.list_cache import lists_changed
from goals.models import Goal, Schedule


def _changed(sender: Any, using: str = "default", **kwargs: Any) -> None:
    lists_changed(using=using)


def connect() -> None:
    # A deleted user's goals lose their owner through a bulk update that sends no signal:
    # the user's own delete stands for it.
    for model in (Goal, Schedule, Agent, get_user_model()):
        post_save.connect(_changed, sender=model, dispatch_uid=f"lists-save-{model._meta.label}")
        post_delete.connect(
            _changed, sender=model, dispatch_uid=f"lists-delete-{model._meta.label}"
        )
