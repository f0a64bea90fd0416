"""What a run records for its tool calls comes from the tools' registry (`Tool.run_output`)."""

from runs.models import Output
from tools.registry import all_tools

SAMPLE_RESULT = {"path": "notes/a.md", "size": 3, "url": "https://x.test", "status": 200}


def test_every_tool_output_is_a_kind_a_run_can_store():
    kinds = {
        tool.name: tool.run_output(SAMPLE_RESULT, {"payload": {"a": 1}})[0]
        for tool in all_tools()
        if tool.run_output is not None
    }
    assert kinds == {"writeFile": "file", "sendWebhook": "webhook", "sendEmail": "email"}
    assert set(kinds.values()) <= set(Output.Kind.values)
