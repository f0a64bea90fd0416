"""Forms of the DAG pages; their limits are the API's (dags/planning/serializers.py)."""

from __future__ import annotations

from typing import Any, cast
from zoneinfo import available_timezones

from django import forms

from agents.llm.providers import PROVIDERS
from config.cron import CronError, normalize_cron, validate_timezone
from dags.planning.serializers import MAX_GOAL_CHARS
from dags.planning.services import PlanRequest

# The planner chosen when nobody picks one (the seeded planning agent).
DEFAULT_PLANNER = "DecomposerV8"
CRON_MAX_CHARS = 200


def timezone_choices() -> list[tuple[str, str]]:
    """Every IANA zone, UTC first."""
    names = sorted(available_timezones() - {"UTC"})
    return [("UTC", "UTC"), *((name, name.replace("_", " ")) for name in names)]


class NewDagForm(forms.Form):
    request = forms.CharField(
        label="What should be done?",
        max_length=MAX_GOAL_CHARS,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        error_messages={
            "required": "Describe the task to plan.",
            "max_length": "The request is too long: at most %(limit_value)d characters "
            "(it has %(show_value)d).",
        },
    )
    agent = forms.ChoiceField(label="Planner agent", choices=())
    provider = forms.ChoiceField(
        label="Provider",
        required=False,
        choices=[("", "Default (the agent's or the server's)"), *((p, p) for p in PROVIDERS)],
    )
    model = forms.CharField(label="Model", required=False, max_length=200)
    temperature = forms.FloatField(
        label="Temperature", required=False, min_value=0, max_value=2, step_size=None
    )

    def __init__(self, *args: Any, agent_names: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = list(agent_names)
        current = (self.data.get("agent") if self.is_bound else self.initial.get("agent")) or ""
        if current and current not in names:
            # A DAG planned by an agent that is no longer active: show it, planning will say so.
            names.append(current)
        cast(forms.ChoiceField, self.fields["agent"]).choices = [(name, name) for name in names]

    def clean_request(self) -> str:
        text = self.cleaned_data["request"]
        if not text.strip():
            raise forms.ValidationError("Describe the task to plan.")
        return text

    def plan_request(self) -> PlanRequest:
        data = self.cleaned_data
        temperature = data.get("temperature")
        return PlanRequest(
            goal_text=data["request"],
            agent_name=data["agent"],
            provider=data.get("provider") or None,
            model=(data.get("model") or "").strip() or None,
            temperature=0.7 if temperature is None else temperature,
        )


class ScheduleForm(forms.Form):
    cron = forms.CharField(
        label="Cron expression",
        required=False,
        max_length=CRON_MAX_CHARS,
        help_text="Five fields (minute hour day-of-month month day-of-week) or a macro such as "
        "@daily. Empty removes the schedule.",
    )
    timezone = forms.ChoiceField(label="Time zone", choices=())
    active = forms.BooleanField(label="Active", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["timezone"]).choices = timezone_choices()

    def clean_cron(self) -> str | None:
        text = " ".join((self.cleaned_data.get("cron") or "").split())
        if not text:
            return None
        try:
            normalize_cron(text)
        except CronError as error:
            raise forms.ValidationError(str(error)) from None
        return text

    def clean_timezone(self) -> str:
        try:
            return validate_timezone(self.cleaned_data["timezone"])
        except CronError as error:
            raise forms.ValidationError(str(error)) from None
