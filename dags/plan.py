"""The DecomposerJob: its schema, its graph checks and `<Result from Task N>` references.

Shared by planning (which validates and renumbers plans) and execution (which refuses a stored
plan that is not a sound DAG and resolves references between tasks).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tools.base import DependencyInput, ToolNotFound
from tools.registry import TOOL_NAMES, get_tool
from tools.services import tool_input_issues

ROOT_MARKERS = frozenset({"none"})

# `<Result from Task 3>`, `<Results of Task 001>`, `<Result from Task t1>`.
REFERENCE_PATTERN = re.compile(r"<Results? (?:from|of) Task ([A-Za-z0-9_.-]+)>")


class _Model(BaseModel):
    # Unknown keys are dropped, not refused: planner models add their own.
    model_config = ConfigDict(extra="ignore")


class Intent(_Model):
    primary: str
    sub_intents: list[str]


class Entity(_Model):
    entity: str
    type: str
    grounded_value: str


class ToolOrPrompt(_Model):
    name: str = Field(min_length=1)
    params: dict[str, Any] | None = None


class SubTask(_Model):
    id: str = Field(min_length=1, max_length=64)
    description: str
    thought: str
    action_type: Literal["tool", "inference"]
    tool_or_prompt: ToolOrPrompt
    expected_output: str
    dependencies: list[str]


class Validation(_Model):
    coverage: str
    gaps: list[str]
    iteration_triggers: list[str]


class DecomposerJob(_Model):
    original_request: str
    intent: Intent
    entities: list[Entity]
    sub_tasks: list[SubTask]
    synthesis_plan: str
    validation: Validation
    clarification_needed: bool
    clarification_query: str | None = None

    @model_validator(mode="after")
    def _clarification_has_a_question(self) -> DecomposerJob:
        if self.clarification_needed and not (self.clarification_query or "").strip():
            raise ValueError("clarification_query is required when clarification_needed is true")
        return self


class PlanError(ValueError):
    """A plan that is not usable; `issues` are `{"path": [...], "message": ...}` items."""

    def __init__(self, issues: list[dict[str, Any]]) -> None:
        self.issues = issues
        super().__init__("; ".join(issue["message"] for issue in issues))


def parse_job(data: Any) -> DecomposerJob:
    """Validate a DecomposerJob; PlanError lists every schema problem."""
    try:
        return DecomposerJob.model_validate(data)
    except ValidationError as error:
        issues = [
            {"path": [*item["loc"]], "message": item["msg"]}
            for item in error.errors(include_url=False)
        ]
        raise PlanError(issues) from None


def job_dict(job: DecomposerJob) -> dict[str, Any]:
    """The stored form: unknown keys dropped, absent optional fields left out."""
    return job.model_dump(mode="json", exclude_none=True)


def real_dependencies(dependencies: Iterable[str]) -> list[str]:
    """Dependencies without the root marker (`none`)."""
    return [dep for dep in dependencies if dep.strip().lower() not in ROOT_MARKERS]


def graph_issues(tasks: list[SubTask]) -> list[dict[str, Any]]:
    """Unique ids, known dependencies, `none` not mixed with real ids, no cycles."""
    issues: list[dict[str, Any]] = []
    ids = [task.id for task in tasks]
    seen: set[str] = set()
    for index, task_id in enumerate(ids):
        if task_id in seen:
            issues.append(
                {"path": ["sub_tasks", index, "id"], "message": f"Duplicate task id '{task_id}'."}
            )
        seen.add(task_id)
    known = set(ids)
    for index, task in enumerate(tasks):
        path = ["sub_tasks", index, "dependencies"]
        real = real_dependencies(task.dependencies)
        if real and len(real) != len(task.dependencies):
            issues.append(
                {
                    "path": path,
                    "message": f"Task '{task.id}' lists 'none' together with real dependencies; "
                    "use [] or ['none'] for a task without dependencies, otherwise only ids.",
                }
            )
        for dep in real:
            if dep not in known:
                issues.append(
                    {"path": path, "message": f"Task '{task.id}' depends on unknown task '{dep}'."}
                )
            elif dep == task.id:
                issues.append({"path": path, "message": f"Task '{task.id}' depends on itself."})
    cycle = find_cycle(
        {t.id: [d for d in real_dependencies(t.dependencies) if d in known] for t in tasks}
    )
    if cycle:
        issues.append(
            {
                "path": ["sub_tasks"],
                "message": "The dependencies form a cycle: " + " -> ".join(cycle) + ".",
            }
        )
    return issues


def find_cycle(edges: Mapping[str, list[str]]) -> list[str] | None:
    """A cycle in the dependency graph as a list of ids (first id repeated at the end)."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for dep in edges.get(node, []):
            if dep == node:
                continue  # reported separately as a self-dependency
            if colour.get(dep) == grey:
                return [*stack[stack.index(dep) :], dep]
            if colour.get(dep) == white:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        colour[node] = black
        return None

    for node in edges:
        if colour[node] == white:
            found = visit(node)
            if found:
                return found
    return None


def reference_key(task_id: str) -> str:
    """References resolve by number when the id is numeric: `Task 1` is task `001`."""
    stripped = task_id.strip()
    return str(int(stripped)) if stripped.isdigit() else stripped


def references_in(value: Any) -> list[str]:
    """Task ids referenced anywhere inside a (nested) parameter value."""
    found: list[str] = []
    if isinstance(value, str):
        found.extend(REFERENCE_PATTERN.findall(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            found.extend(references_in(item))
    elif isinstance(value, list | tuple):
        for item in value:
            found.extend(references_in(item))
    return found


def result_text(result: Any) -> str:
    """How a task result is inserted into text: strings verbatim, anything else as JSON."""
    if isinstance(result, str):
        return result
    return json.dumps(result, ensure_ascii=False)


def substitute_references(value: Any, results: Mapping[str, Any]) -> Any:
    """Replace `<Result from Task N>` inside strings (recursively) with task N's result.

    `results` is keyed by `reference_key(task_id)`. Unknown references are left in place. The
    replacement is a function, so `$&`-style text in results is inserted literally.
    """
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            key = reference_key(match.group(1))
            return result_text(results[key]) if key in results else match.group(0)

        return REFERENCE_PATTERN.sub(replace, value)
    if isinstance(value, Mapping):
        return {key: substitute_references(item, results) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute_references(item, results) for item in value]
    return value


def rewrite_references(value: Any, id_map: Mapping[str, str]) -> Any:
    """Rewrite `<Result from Task X>` to the new ids of a renumbered plan."""
    by_key = {reference_key(old): new for old, new in id_map.items()}
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            new = id_map.get(match.group(1)) or by_key.get(reference_key(match.group(1)))
            if not new:
                return match.group(0)
            start = match.start(1) - match.start(0)
            return match.group(0)[:start] + new + ">"

        return REFERENCE_PATTERN.sub(replace, value)
    if isinstance(value, Mapping):
        return {key: rewrite_references(item, id_map) for key, item in value.items()}
    if isinstance(value, list):
        return [rewrite_references(item, id_map) for item in value]
    return value


# --- plan checks ---------------------------------------------------------------------------------
# Stands in for a dependency's result when tool params are checked before anything ran: a URL,
# so that `{"url": "<Result from Task 1>"}` passes while the tool's own rules still apply.
PLACEHOLDER_RESULT = "https://example.com/placeholder-result"
_LISTED_NAMES = 30


def _dotted(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(the parameters object)"


def _holds_reference(params: Any, path: list[Any]) -> bool:
    """Whether the value at `path` (or a string on the way to it) contains a reference: such a
    value is only known at run time, so a schema complaint about it is not the plan's fault."""
    value = params
    for part in [None, *path]:
        if part is not None:
            in_mapping = isinstance(value, Mapping) and part in value
            in_list = isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
            if not (in_mapping or in_list):
                return False
            value = value[part]
        if isinstance(value, str) and REFERENCE_PATTERN.search(value):
            return True
    return bool(references_in(value))


def tool_param_issues(task: SubTask) -> list[dict[str, Any]]:
    """The tool's parameter problems as the executor would meet them, references allowed for.

    Params are resolved the way the executor resolves them (a tool may take a parameter from
    its dependencies' results: `Tool.dependency_input`), with a placeholder for every result.
    """
    params = task.tool_or_prompt.params or {}
    dependencies = real_dependencies(task.dependencies)
    keys = {reference_key(item) for item in [*dependencies, *references_in(params)]}
    resolved = resolve_tool_params(
        tool_name=task.tool_or_prompt.name,
        params=params,
        dependency_ids=dependencies,
        results=dict.fromkeys(keys, PLACEHOLDER_RESULT),
    )
    issues = tool_input_issues(name=task.tool_or_prompt.name, params=resolved)
    issues = [issue for issue in issues if not _holds_reference(params, issue["path"])]
    # What the executor would fill in from dependencies must come from somewhere.
    feed = _dependency_input(task.tool_or_prompt.name)
    if feed is not None and not feed.given(params) and not dependencies:
        issues.append({"path": [feed.param], "message": feed.missing_message})
    return issues


def _names(names: Iterable[str]) -> str:
    listed = sorted(set(names))
    text = ", ".join(listed[:_LISTED_NAMES])
    return text + (", ..." if len(listed) > _LISTED_NAMES else "") if text else "(none)"


def _task_issues(
    index: int, task: SubTask, active_agents: set[str], ids_by_key: dict[str, str]
) -> list[dict[str, Any]]:
    issues: list[dict[str, Any]] = []
    base = ["sub_tasks", index, "tool_or_prompt"]
    name = task.tool_or_prompt.name
    params = task.tool_or_prompt.params or {}
    if task.action_type == "tool":
        if name not in TOOL_NAMES:
            hint = (
                f" '{name}' is an agent: use action_type 'inference' for it."
                if name in active_agents
                else " For a language-model step use action_type 'inference' with an agent name."
            )
            issues.append(
                {
                    "path": [*base, "name"],
                    "message": f"Task '{task.id}' uses the tool '{name}', which does not exist. "
                    f"Available tools: {', '.join(TOOL_NAMES)}.{hint}",
                }
            )
        else:
            for problem in tool_param_issues(task):
                issues.append(
                    {
                        "path": [*base, "params", *problem["path"]],
                        "message": f"Task '{task.id}', tool '{name}', parameter "
                        f"'{_dotted(problem['path'])}': {problem['message']}",
                    }
                )
    else:
        if name not in active_agents:
            issues.append(
                {
                    "path": [*base, "name"],
                    "message": f"Task '{task.id}' is an inference by the agent '{name}', which "
                    f"does not exist or is not active. Active agents: {_names(active_agents)}.",
                }
            )
        prompt = params.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            issues.append(
                {
                    "path": [*base, "params", "prompt"],
                    "message": f"Task '{task.id}': params.prompt must be a string.",
                }
            )
    dependencies = {reference_key(dep) for dep in real_dependencies(task.dependencies)}
    for reference in dict.fromkeys(references_in(params)):
        key = reference_key(reference)
        if key not in ids_by_key:
            reason = f"there is no task '{reference}' in the plan"
        elif key not in dependencies:
            reason = (
                f"task '{ids_by_key[key]}' is not one of its dependencies (add it to "
                "dependencies or remove the reference)"
            )
        else:
            continue
        issues.append(
            {
                "path": [*base, "params"],
                "message": f"Task '{task.id}' refers to <Result from Task {reference}>, but "
                f"{reason}.",
            }
        )
    return issues


def plan_issues(
    job: DecomposerJob, *, active_agents: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Everything that would keep an executable plan from running.

    The graph checks (`graph_issues`), then per task: the tool exists and its params pass its
    schema once references are allowed for; an inference names an active agent; every
    `<Result from Task N>` points at one of the task's dependencies. A plan that asks for
    clarification is not executable and is not checked here. `active_agents` defaults to the
    names of the active agents in the database.
    """
    if not job.sub_tasks:
        return [
            {
                "path": ["sub_tasks"],
                "message": "The plan has no sub-tasks. Add at least one, or set "
                "clarification_needed with a question if the request cannot be planned.",
            }
        ]
    if active_agents is None:
        from agents.models import Agent

        active_agents = Agent.objects.filter(active=True).values_list("name", flat=True)
    agents = set(active_agents)
    ids_by_key = {reference_key(task.id): task.id for task in job.sub_tasks}
    issues = graph_issues(job.sub_tasks)
    for index, task in enumerate(job.sub_tasks):
        issues.extend(_task_issues(index, task, agents, ids_by_key))
    return issues


# --- renumbering ---------------------------------------------------------------------------------
def renumbered(job: DecomposerJob) -> DecomposerJob:
    """The plan with task ids `001`, `002`, … in plan order; dependencies and every
    `<Result(s) from|of Task X>` (in params, texts and the synthesis plan) follow the new ids.

    Ids must be unique (see `graph_issues`); `none` and unknown dependencies stay as they are.
    """
    width = max(3, len(str(len(job.sub_tasks))))
    id_map = {task.id: f"{number:0{width}d}" for number, task in enumerate(job.sub_tasks, 1)}
    data = job.model_dump(mode="json")
    for task in data["sub_tasks"]:
        old_id = task["id"]
        for key in ("description", "thought", "expected_output", "tool_or_prompt"):
            task[key] = rewrite_references(task[key], id_map)
        task["dependencies"] = [id_map.get(dep, dep) for dep in task["dependencies"]]
        task["id"] = id_map[old_id]
    data["synthesis_plan"] = rewrite_references(data["synthesis_plan"], id_map)
    return DecomposerJob.model_validate(data)


# --- a tool node's input ------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskResults:
    """References to earlier task results, as a tool's `DependencyInput` reads and fills them."""

    results: Mapping[str, Any]

    def present(self, value: Any) -> bool:
        return bool(references_in(value))

    def substitute(self, value: Any) -> Any:
        return substitute_references(value, self.results)


def _dependency_input(tool_name: str) -> DependencyInput | None:
    try:
        return get_tool(tool_name).dependency_input
    except ToolNotFound:
        return None


def parse_result(stored: Any) -> Any:
    """A stored result back in structured form when it is JSON text (tool outputs)."""
    if isinstance(stored, str):
        text = stored.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                return stored
    return stored


def resolve_tool_params(
    *,
    tool_name: str,
    params: Mapping[str, Any] | None,
    dependency_ids: list[str],
    results: Mapping[str, Any],
) -> dict[str, Any]:
    """The tool's input: references replaced, and what the tool takes from its dependencies
    (`Tool.dependency_input`) filled in.

    `results` maps `reference_key(task_id)` to the structured result of each completed task.
    """
    resolved = dict(params or {})
    feed = _dependency_input(tool_name)
    if feed is None:
        return substitute_references(resolved, results)
    dependency_results = [
        results[reference_key(dep)] for dep in dependency_ids if reference_key(dep) in results
    ]
    return feed.resolve(resolved, dependency_results, TaskResults(results))
