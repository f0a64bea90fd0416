"""Plan checks, renumbering and JSON extraction, without the API."""

from __future__ import annotations

import json

import pytest

from dags.plan import parse_job, plan_issues, renumbered
from dags.planning.extraction import MAX_REPLY_CHARS, ReplyParseError, extract_json
from dags.planning.services import clean_title
from dags.tests.planning_helpers import plan, task

AGENTS = {"InferenceAgent"}


def issues_of(job: dict) -> list[str]:
    return [issue["message"] for issue in plan_issues(parse_job(job), active_agents=AGENTS)]


# --- plan checks ---------------------------------------------------------------------------------
def test_a_sound_plan_has_no_issues():
    job = plan(
        task("a"),
        task("b", tool="fetchURLs", params={"urls": ["<Result from Task a>"]}, deps=["a"]),
        task("c", action="inference", tool="InferenceAgent", params={"prompt": "x"}, deps=["b"]),
        task(
            "d",
            tool="sendEmail",
            params={"to": "<Result from Task c>", "subject": "s", "body": "<Result from Task c>"},
            deps=["c"],
        ),
    )
    assert issues_of(job) == []


@pytest.mark.parametrize(
    "params",
    [
        {"url": "<Result from Task a>"},  # a whole reference
        {"url": "<Result from Task a>", "maxLength": 500},
    ],
)
def test_references_stand_in_for_values_known_only_at_run_time(params):
    job = plan(task("a"), task("b", tool="fetchPage", params=params, deps=["a"]))
    assert issues_of(job) == []


def test_fetch_urls_may_take_its_urls_from_dependencies_only():
    job = plan(task("a"), task("b", tool="fetchURLs", params={}, deps=["a"]))
    assert issues_of(job) == []


def test_write_file_content_may_come_from_dependencies():
    job = plan(task("a"), task("b", tool="writeFile", params={"path": "out.md"}, deps=["a"]))
    assert issues_of(job) == []


def test_literal_params_are_still_checked_next_to_references():
    job = plan(
        task("a"),
        task(
            "b",
            tool="fetchPage",
            params={"url": "<Result from Task a>", "maxLength": 5, "colour": "red"},
            deps=["a"],
        ),
    )
    messages = issues_of(job)
    assert any(
        "parameter 'maxLength'" in m and "greater than or equal to 100" in m for m in messages
    )
    assert any("parameter 'colour': Unknown parameter" in m for m in messages)
    assert len(messages) == 2


def test_missing_required_params_are_reported():
    messages = issues_of(plan(task("a", params={})))
    assert messages == ["Task 'a', tool 'webSearch', parameter 'query': Required"]


def test_references_must_point_at_dependencies_and_known_tasks():
    job = plan(
        task("a"),
        task("b", params={"query": "<Result from Task a> and <Result from Task zz>"}),
    )
    messages = issues_of(job)
    assert any(
        "refers to <Result from Task a>, but task 'a' is not one of its" in m for m in messages
    )
    assert any(
        "<Result from Task zz>, but there is no task 'zz' in the plan" in m for m in messages
    )


def test_references_match_dependencies_by_number():
    job = plan(task("001"), task("002", params={"query": "<Result from Task 1>"}, deps=["001"]))
    assert issues_of(job) == []


def test_an_agent_named_as_a_tool_gets_a_hint():
    messages = issues_of(plan(task("a", tool="InferenceAgent", params={})))
    assert "'InferenceAgent' is an agent: use action_type 'inference'" in messages[0]


def test_inference_prompt_must_be_text():
    job = plan(task("a", action="inference", tool="InferenceAgent", params={"prompt": 3}))
    assert issues_of(job) == ["Task 'a': params.prompt must be a string."]


def test_an_empty_plan_is_not_executable():
    job = plan()
    job["sub_tasks"] = []
    assert "no sub-tasks" in issues_of(job)[0]


@pytest.mark.django_db
def test_active_agents_come_from_the_database_by_default():
    from tests.factories import AgentFactory

    AgentFactory(name="Writer", active=True)
    AgentFactory(name="Sleeper", active=False)
    ok = plan(task("a", action="inference", tool="Writer", params={}))
    bad = plan(task("a", action="inference", tool="Sleeper", params={}))
    assert plan_issues(parse_job(ok)) == []
    assert "Active agents: Writer." in plan_issues(parse_job(bad))[0]["message"]


# --- renumbering ---------------------------------------------------------------------------------
def test_renumbering_rewrites_dependencies_and_every_reference():
    job = parse_job(
        plan(
            task("search", params={"query": "q"}),
            task(
                "read",
                tool="fetchURLs",
                params={"urls": ["<Result from Task search>"]},
                deps=["search"],
            ),
            synthesis_plan="Use <Results of Task read>.",
        )
    )
    job.sub_tasks[1].description = "reads <Result from Task search>"

    new = renumbered(job)

    assert [t.id for t in new.sub_tasks] == ["001", "002"]
    assert new.sub_tasks[0].dependencies == ["none"]
    assert new.sub_tasks[1].dependencies == ["001"]
    assert new.sub_tasks[1].tool_or_prompt.params == {"urls": ["<Result from Task 001>"]}
    assert new.sub_tasks[1].description == "reads <Result from Task 001>"
    assert new.synthesis_plan == "Use <Results of Task 002>."


# --- extraction ----------------------------------------------------------------------------------
def test_extraction_prefers_the_json_block():
    text = 'Plan:\n```python\nprint(1)\n```\n```json\n{"a": 1}\n```\n'
    assert extract_json(text) == {"a": 1}


def test_extraction_accepts_any_fence_and_bare_json():
    assert extract_json('```\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('  {"a": 1}  ') == {"a": 1}
    assert extract_json('Sure! {"a": {"b": 2}} Hope this helps.') == {"a": {"b": 2}}


def test_extraction_error_names_line_and_column():
    with pytest.raises(ReplyParseError) as caught:
        extract_json('```json\n{\n  "a": 1\n  "b": 2\n}\n```')
    message = str(caught.value)
    assert "block: Expecting ',' delimiter at line 3, column 3" in message
    assert '>    3 |   "b": 2' in message


def test_extraction_reports_missing_json_and_empty_replies():
    with pytest.raises(ReplyParseError, match="No JSON found"):
        extract_json("no plan here")
    with pytest.raises(ReplyParseError, match="empty"):
        extract_json("   ")


def test_extraction_is_size_capped():
    huge = json.dumps({"a": "x" * MAX_REPLY_CHARS})
    with pytest.raises(ReplyParseError, match="too large"):
        extract_json(huge)


def test_titles_are_cleaned():
    assert clean_title('  "Battery News"  ') == "Battery News"
    assert clean_title("\n\n# Title: **Quarterly Report**\nmore") == "Quarterly Report"
    assert clean_title("   \n ") is None
    assert len(clean_title("a" * 500)) == 200


def test_values_filled_from_dependencies_need_a_dependency():
    messages = issues_of(
        plan(
            task("a", tool="writeFile", params={"path": "x.md"}),
            task("b", tool="fetchURLs", params={}),
        )
    )
    assert messages == [
        "Task 'a', tool 'writeFile', parameter 'content': Required (or depend on the task to be "
        "written)",
        "Task 'b', tool 'fetchURLs', parameter 'urls': Give URLs or depend on a task that finds "
        "them",
    ]
