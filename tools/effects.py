"""Side effects done at most once per DAG task, however often the task runs.

A task runs again when its worker died (another worker re-claims it) or when an execution is
resumed after a failure. `once(...)` records the effect before doing it and its result after:
a repeat after success returns the recorded result without doing it again; a repeat after an
interruption (the record says "started") refuses, because the effect may have happened, and
clears the record so that a deliberate resume by a user does it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.timezone import now

from tools.base import ToolContext, ToolError, ToolTimeout
from tools.models import ToolEffect

logger = logging.getLogger(__name__)


def task_effect_key(context: ToolContext) -> str | None:
    """The DAG task's key (`<execution id>:<task id>`), or None outside a DAG task."""
    if context.execution_id and context.sub_step_id:
        return f"{context.execution_id}:{context.sub_step_id}"
    return None


def once(*, key: str | None, tool: str, what: str, effect: Callable[[], Any]) -> Any:
    """Run `effect()` unless this key's effect was already done (then: its recorded result)."""
    if key is None:
        return effect()
    previous = ToolEffect.objects.filter(key=key).first()
    if previous is not None:
        if previous.status == ToolEffect.Status.DONE:
            logger.info("%s of task %s already done; not repeated", tool, key)
            return previous.result
        ToolEffect.objects.filter(pk=previous.pk, status=ToolEffect.Status.STARTED).delete()
        raise ToolError(
            f"An earlier attempt of this task was interrupted while it {what}; it may have "
            "happened, so it is not repeated automatically. Resume the execution to do it anyway."
        )
    try:
        with transaction.atomic():
            record = ToolEffect.objects.create(key=key, tool=tool)
    except IntegrityError:  # another worker is doing it right now
        raise ToolError(f"Another worker is running this task's {tool} call.") from None
    try:
        result = effect()
    except ToolTimeout:
        raise  # it may have happened: the record stays, and a repeat refuses
    except ToolError:
        record.delete()  # it failed and said so: a resume may try again
        raise
    except BaseException:
        record.delete()
        raise
    ToolEffect.objects.filter(pk=record.pk).update(
        status=ToolEffect.Status.DONE, result=result, updated_at=now()
    )
    return result
