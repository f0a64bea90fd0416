"""Forms of the goal pages; their limits are the API's (goals/serializers.py)."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator

from agents.models import Agent
from config.cron import CronError, normalize_cron, validate_timezone
from dags.forms import CRON_MAX_CHARS, timezone_choices
from tools.registry import all_tools

OBJECTIVE_MIN_CHARS = 10
STEP_BUDGET_MAX = 1000
# Offered beside the free cron field; the empty value means "use the typed expression".
CRON_PRESETS: list[tuple[str, str]] = [
    ("", "Custom (type below)"),
    ("@hourly", "Every hour"),
    ("0 9 * * *", "Every day at 09:00"),
    ("0 9 * * 1-5", "Weekdays at 09:00"),
    ("0 18 * * 5", "Fridays at 18:00"),
    ("0 0 * * 0", "Every Sunday at midnight"),
    ("0 8 1 * *", "First day of the month at 08:00"),
    ("*/15 * * * *", "Every 15 minutes"),
]


def agent_choices() -> list[tuple[str, str]]:
    """Active agents first (by name), then the other versions; the value is the agent's id."""
    agents = Agent.objects.order_by("-active", "name", "-created_at").only(
        "id", "name", "version", "active"
    )
    active = [(a.id, f"{a.name} {a.version}") for a in agents if a.active]
    inactive = [(a.id, f"{a.name} {a.version} (inactive)") for a in agents if not a.active]
    choices: list[tuple[str, Any]] = [("", "Default agent")]
    if active:
        choices.append(("Active agents", active))
    if inactive:
        choices.append(("Inactive versions", inactive))
    return choices


def tool_choices() -> list[tuple[str, str]]:
    return [(tool.name, tool.name) for tool in all_tools()]


class GoalForm(forms.Form):
    objective = forms.CharField(
        label="Objective",
        min_length=OBJECTIVE_MIN_CHARS,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6, "data-counter": ""}),
        help_text="What the agent should achieve, in words.",
        error_messages={
            "required": "Write the goal's objective.",
            "min_length": "Too short: at least %(limit_value)d characters (it has %(show_value)d).",
            "max_length": "Too long: at most %(limit_value)d characters (it has %(show_value)d).",
        },
    )
    agent = forms.ChoiceField(label="Agent", required=False, choices=())
    step_budget = forms.IntegerField(
        label="Step budget",
        required=False,
        min_value=1,
        max_value=STEP_BUDGET_MAX,
        help_text=f"At most this many steps per run (empty: {settings.DEFAULT_STEP_BUDGET}).",
    )
    allowed_tools = forms.MultipleChoiceField(
        label="Allowed tools",
        required=False,
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        help_text="None checked: the agent may use no tool.",
    )
    webhook_url = forms.URLField(
        label="Webhook URL",
        required=False,
        max_length=2048,
        assume_scheme="https",
        help_text="Called with the result when a run ends.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = settings.MAX_MESSAGE_LENGTH
        objective = cast(forms.CharField, self.fields["objective"])
        objective.max_length = limit
        objective.validators.append(MaxLengthValidator(limit))
        objective.widget.attrs["maxlength"] = str(limit)
        objective.widget.attrs["minlength"] = str(OBJECTIVE_MIN_CHARS)
        cast(forms.ChoiceField, self.fields["agent"]).choices = agent_choices()
        cast(forms.ChoiceField, self.fields["allowed_tools"]).choices = tool_choices()

    def clean_objective(self) -> str:
        text = self.cleaned_data["objective"]
        if len(text.strip()) < OBJECTIVE_MIN_CHARS:
            raise forms.ValidationError(
                f"Too short: at least {OBJECTIVE_MIN_CHARS} characters besides spaces."
            )
        return text

    def clean_webhook_url(self) -> str | None:
        url = self.cleaned_data.get("webhook_url") or ""
        if not url:
            return None
        if not url.lower().startswith(("http://", "https://")):
            raise forms.ValidationError("Enter an http:// or https:// URL.")
        return url

    def clean_agent(self) -> Agent | None:
        agent_id = self.cleaned_data.get("agent") or ""
        if not agent_id:
            return None
        agent = Agent.objects.filter(pk=agent_id).first()
        if agent is None:
            raise forms.ValidationError("That agent no longer exists; pick another.")
        return agent

    def params(self, existing: dict[str, Any] | None = None) -> dict[str, Any]:
        """The goal's params: the existing ones (constraints kept) with the form's values."""
        params = dict(existing or {})
        budget = self.cleaned_data.get("step_budget")
        if budget is None:
            params.pop("stepBudget", None)
        else:
            params["stepBudget"] = budget
        params["allowedTools"] = list(self.cleaned_data.get("allowed_tools") or [])
        return params


class ScheduleRowForm(forms.Form):
    """One schedule of the goal form: a preset or a typed cron, and a time zone."""

    id = forms.CharField(required=False, widget=forms.HiddenInput)
    preset = forms.ChoiceField(label="Preset", required=False, choices=CRON_PRESETS)
    cron = forms.CharField(
        label="Cron expression",
        required=False,
        max_length=CRON_MAX_CHARS,
        help_text="Five fields (minute hour day-of-month month day-of-week) or a macro such as "
        "@daily.",
    )
    timezone = forms.ChoiceField(label="Time zone", choices=())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["timezone"]).choices = timezone_choices()
        # The cron field names the preview's region, so a screen reader hears the description.
        self.fields["cron"].widget.attrs["aria-describedby"] = f"{self.prefix}-preview"

    def clean(self) -> dict[str, Any]:
        # Form.clean returns `cleaned_data`, which is set once validation has begun.
        data = cast(dict[str, Any], super().clean())
        if data.get("DELETE"):
            return data
        text = " ".join((data.get("cron") or "").split()) or data.get("preset") or ""
        if not text:
            if data.get("id"):
                self.add_error("cron", "Give a cron expression, or remove this schedule.")
            return data
        try:
            normalize_cron(text)
        except CronError as error:
            self.add_error("cron", str(error))
            return data
        data["cron"] = text
        return data

    def clean_timezone(self) -> str:
        try:
            return validate_timezone(self.cleaned_data["timezone"])
        except CronError as error:
            raise forms.ValidationError(str(error)) from None

    @property
    def wanted(self) -> bool:
        """Whether this row names a schedule to keep (filled in and not removed)."""
        data = getattr(self, "cleaned_data", {})
        if self.errors or data.get("DELETE"):
            return False
        return bool(data.get("cron")) and bool(data.get("timezone"))


class BaseScheduleFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        super().clean()
        seen: set[tuple[str, str]] = set()
        for form in self.forms:
            if not form.wanted:
                continue
            key = (normalize_cron(form.cleaned_data["cron"]), form.cleaned_data["timezone"])
            if key in seen:
                form.add_error("cron", "The same schedule is listed twice.")
            seen.add(key)


ScheduleFormSet = forms.formset_factory(
    ScheduleRowForm,
    formset=BaseScheduleFormSet,
    extra=0,
    can_delete=True,
    max_num=20,
    validate_max=True,
    absolute_max=40,
)
