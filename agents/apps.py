from typing import Any

from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from agents.cache import agents_changed
        from agents.models import Agent

        def changed(sender: Any, using: str = "default", **kwargs: Any) -> None:
            agents_changed(using=using)

        # Every save and delete of an agent retires the agents kept by every process.
        post_save.connect(changed, sender=Agent, weak=False, dispatch_uid="agents-kept-save")
        post_delete.connect(changed, sender=Agent, weak=False, dispatch_uid="agents-kept-delete")
