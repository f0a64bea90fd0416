"""Forms of the agent and task pages; their rules are the API's (`agents.serializers.AgentIn`,
`agents.task.services`), applied through the same serializer so that they cannot drift apart."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from agents.models import Agent, Provider
from agents.serializers import PROMPT_MAX_LENGTH, AgentIn

METADATA_HELP = 'A JSON object, for example {"owner": "research", "notes": "…"}.'
SAMPLE_TEST_PROMPT = "Say hello and describe in one sentence what you can do."
TEST_PROMPT_MAX_CHARS = 4000
TASK_PROMPT_MAX_CHARS = 100_000

# Form field → the API's input key.
API_KEYS = {
    "name": "name",
    "version": "version",
    "prompt_template": "promptTemplate",
    "provider": "provider",
    "model": "model",
    "metadata": "metadata",
}


class AgentForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)
    version = forms.CharField(label="Version", max_length=100)
    provider = forms.ChoiceField(
        label="Provider",
        required=False,
        choices=[("", "Default (the server's setting)"), *Provider.choices],
    )
    model = forms.CharField(
        label="Model", required=False, max_length=200, help_text="Empty: the server's default."
    )
    prompt_template = forms.CharField(
        label="Prompt template",
        max_length=PROMPT_MAX_LENGTH,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false", "class": "mono"}),
        help_text="Sent as the system message. Placeholders such as {{currentDate}} are "
        "replaced when the agent is called.",
    )
    metadata = forms.CharField(
        label="Metadata (JSON)",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "class": "mono"}),
        help_text=METADATA_HELP,
    )

    @classmethod
    def initial_for(cls, agent: Agent) -> dict[str, Any]:
        metadata = agent.metadata if agent.metadata is not None else {}
        return {
            "name": agent.name,
            "version": agent.version,
            "provider": agent.provider or "",
            "model": agent.model or "",
            "prompt_template": agent.prompt_template,
            "metadata": json.dumps(metadata, indent=2, ensure_ascii=False),
        }

    def clean_metadata(self) -> Any:
        text = self.cleaned_data["metadata"]
        if not text.strip():
            return {}
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(
                f"Not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})."
            ) from None

    def clean_prompt_template(self) -> str:
        text = self.cleaned_data["prompt_template"]
        if not text.strip():
            raise forms.ValidationError("Write the prompt template.")
        return text

    def clean(self) -> dict[str, Any]:
        """The API's own validation of the same values; its messages go beside the fields."""
        cleaned = super().clean() or {}
        data = {
            API_KEYS[name]: value
            for name, value in cleaned.items()
            if name in API_KEYS and name not in self.errors
        }
        data["provider"] = data.get("provider") or None
        data["model"] = (data.get("model") or "").strip() or None
        serializer = AgentIn(data=data, partial=True)
        if not serializer.is_valid():
            by_key = {key: name for name, key in API_KEYS.items()}
            for key, messages in serializer.errors.items():
                target = by_key.get(key)
                for message in _flat(messages):
                    self.add_error(target, message)
        return cleaned

    def changes(self) -> dict[str, Any]:
        """The model fields to create or update with."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "version": data["version"],
            "prompt_template": data["prompt_template"],
            "provider": data.get("provider") or None,
            "model": (data.get("model") or "").strip() or None,
            "metadata": data.get("metadata") if data.get("metadata") is not None else {},
        }


def _flat(messages: Any) -> list[str]:
    if isinstance(messages, dict):
        return [f"{key}: {text}" for key, value in messages.items() for text in _flat(value)]
    if isinstance(messages, list | tuple):
        return [text for item in messages for text in _flat(item)]
    return [str(messages)]


class AgentTestForm(forms.Form):
    prompt = forms.CharField(
        label="Sample prompt",
        max_length=TEST_PROMPT_MAX_CHARS,
        initial=SAMPLE_TEST_PROMPT,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class TaskForm(forms.Form):
    agent = forms.ChoiceField(label="Agent", choices=())
    prompt = forms.CharField(
        label="Prompt",
        max_length=TASK_PROMPT_MAX_CHARS,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        error_messages={
            "required": "Write a prompt for the agent.",
            "max_length": "The prompt is too long: at most %(limit_value)d characters "
            "(it has %(show_value)d).",
        },
    )

    def __init__(self, *args: Any, agent_names: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        agent_field = self.fields["agent"]
        assert isinstance(agent_field, forms.ChoiceField)
        agent_field.choices = [(name, name) for name in agent_names]
        agent_field.error_messages["invalid_choice"] = (
            "There is no active agent named %(value)s; choose one from the list."
        )

    def clean_prompt(self) -> str:
        text = self.cleaned_data["prompt"]
        if not text.strip():
            raise forms.ValidationError("Write a prompt for the agent.")
        return text
