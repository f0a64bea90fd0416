"""Planning: turn a request into a checked, renumbered, titled and stored DAG.

One service for create-dag, create-and-execute-dag and each dag-experiments run. The planner
agent's template gets the tool definitions and the current date; its reply must carry a
DecomposerJob that passes the schema and the plan checks. Up to three LLM calls;
every retry shows the model its previous reply and exactly what was wrong with it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction

from agents.llm.client import ChatResult, resolve_target
from agents.llm.errors import LLMConfigurationError, LLMError
from agents.llm.providers import missing_configuration
from agents.llm.usage import Spend, Usage
from agents.models import Agent
from agents.runtime import agent_chat
from agents.selectors import agent_get_active, agents_get_active
from agents.templating import current_date_text
from config.cron import CronError, normalize_cron, validate_timezone
from config.errors import DomainError, FieldInvalid, NotFound
from dags.models import Dag, new_dag_id
from dags.plan import DecomposerJob, PlanError, job_dict, parse_job, plan_issues, renumbered
from dags.planning.extraction import ReplyParseError, extract_json
from dags.schedules import dag_schedule_sync
from tools.registry import tool_definitions

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
TITLE_AGENT_NAME = "TitleMaster"
TITLE_PROMPT_CHARS = 2000
TITLE_MAX_CHARS = 200
RESPONSE_PREVIEW_CHARS = 500
# Quotes (straight and typographic), markdown marks and spaces around a title.
_TITLE_TRIM = "#*_`\"' \u201c\u201d\u2018\u2019"
# The previous reply shown back to the model on a retry is cut to this many characters.
RETRY_REPLY_CHARS = 30_000
MAX_LISTED_ISSUES = 40

_DATE_PLACEHOLDER = re.compile(r"\{\{\s*currentDate\s*\}\}")

CRON_ERROR = "Invalid cron expression"
PROVIDER_ERROR = "Invalid LLM provider configuration"

REASON_INITIAL = "initial"
REASON_PARSE = "retry_parse_error"
REASON_VALIDATION = "retry_validation"
REASON_GAPS = "retry_gaps"
REASON_TITLE = "title_master"


class PlanningError(DomainError):
    """Planning failed; `status` and the extra body keys follow the error shapes clients expect."""

    # `http_status`, not `status`: several bodies carry a `status` key of their own.
    def __init__(self, http_status: int, message: str, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.status = http_status


@dataclass(frozen=True)
class PlanRequest:
    """What to plan and how; `params()` is what the stored DAG records about the request."""

    goal_text: str
    agent_name: str
    provider: str | None = None
    model: str | None = None
    temperature: float = 0.7
    max_tokens: int = 10000
    seed: int | None = None
    cron_schedule: str | None = None
    # None: active when there is a cron schedule.
    schedule_active: bool | None = None
    timezone: str = "UTC"

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"goalText": self.goal_text, "agentName": self.agent_name}
        if self.provider:
            params["provider"] = self.provider
        if self.model:
            params["model"] = self.model
        params["temperature"] = self.temperature
        params["max_tokens"] = self.max_tokens
        if self.seed is not None:
            params["seed"] = self.seed
        return params

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe form (for Celery); `PlanRequest(**data)` rebuilds it."""
        return asdict(self)


@dataclass
class PlanningResult:
    """An accepted plan (`dag` stored) or a clarification question (`dag` is None)."""

    job: DecomposerJob
    attempts: int
    final_call: ChatResult
    attempt_log: list[dict[str, Any]] = field(default_factory=list)
    dag: Dag | None = None

    @property
    def clarification_needed(self) -> bool:
        return self.dag is None

    @property
    def usage(self) -> dict[str, int] | None:
        return self.final_call.usage.as_dict() if self.final_call.usage else None

    @property
    def generation_stats(self) -> dict[str, Any] | None:
        return self.final_call.generation_stats


# --- pre-flight ----------------------------------------------------------------------------------
def schedule_checked(request: PlanRequest) -> tuple[str | None, str]:
    """(cron, time zone) of the request, validated; PlanningError / FieldInvalid otherwise."""
    cron = (request.cron_schedule or "").strip() or None
    if cron is not None:
        try:
            normalize_cron(cron)
        except CronError as error:
            raise PlanningError(400, CRON_ERROR, details=str(error)) from None
    try:
        zone = validate_timezone(request.timezone or "UTC")
    except CronError as error:
        raise FieldInvalid(["timezone"], str(error)) from None
    return cron, zone


def provider_checked(provider: str | None, model: str | None = None) -> tuple[str, str] | None:
    """Validate a provider named in a request: known, and configured (a key where one is needed).

    Returns the canonical (provider, model) or None when no provider was named.
    """
    if not provider:
        return None
    try:
        name, resolved_model = resolve_target(provider, model)
    except LLMConfigurationError as error:
        raise PlanningError(400, PROVIDER_ERROR, details=error.detail) from None
    problem = missing_configuration(name)
    if problem:
        raise PlanningError(400, PROVIDER_ERROR, details=f"{name}: {problem}")
    return name, resolved_model


def planner_agent(name: str) -> Agent:
    agent = agent_get_active(name=name)
    if agent is None:
        raise NotFound(planner_missing(name))
    return agent


def planner_missing(name: str) -> str:
    return f"Agent '{name}' not found OR not active"


def planning_preflight(request: PlanRequest) -> Agent:
    """Everything checked before any LLM call, in this order (so the first
    problem reported is the one clients expect): cron (and time zone),
    the provider named in the request, the planner agent."""
    schedule_checked(request)
    provider_checked(request.provider, request.model)
    return planner_agent(request.agent_name)


# --- retry messages ------------------------------------------------------------------------------
def _path_text(path: list[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _issue_lines(issues: list[dict[str, Any]]) -> str:
    lines = []
    for issue in issues[:MAX_LISTED_ISSUES]:
        where = _path_text(issue.get("path") or [])
        message = issue["message"]
        lines.append(f"- {where}: {message}" if where and where not in message else f"- {message}")
    if len(issues) > MAX_LISTED_ISSUES:
        lines.append(f"- … and {len(issues) - MAX_LISTED_ISSUES} more problems of the same kind")
    return "\n".join(lines)


_REPLY_AGAIN = (
    "Reply again with the complete corrected plan: one JSON object in a single ```json fenced "
    "block, nothing else."
)


def parse_feedback(error: str) -> str:
    return f"Your previous reply could not be read as a plan.\n{error}\n\n{_REPLY_AGAIN}"


def schema_feedback(issues: list[dict[str, Any]]) -> str:
    return (
        "Your previous plan does not follow the required DecomposerJob format:\n"
        f"{_issue_lines(issues)}\n\n{_REPLY_AGAIN}"
    )


def plan_feedback(issues: list[dict[str, Any]]) -> str:
    return (
        "Your previous plan cannot be executed:\n"
        f"{_issue_lines(issues)}\n\nFix every problem listed. {_REPLY_AGAIN}"
    )


def gaps_feedback(coverage: str, gaps: list[str]) -> str:
    listed = "\n".join(f"{number}. {gap}" for number, gap in enumerate(gaps, 1))
    return (
        f"Your previous plan rated its coverage '{coverage}' and left these gaps:\n{listed}\n\n"
        "Revise the plan so that it covers every one of them. " + _REPLY_AGAIN
    )


# --- the attempt loop ----------------------------------------------------------------------------
@dataclass
class _Ledger:
    """Every LLM call of one planning: the attempt records and the running totals."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    spend: Spend = field(default_factory=Spend)

    def record(
        self, attempt: int, reason: str, reply: ChatResult | None, **extra: Any
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {"attempt": attempt, "reason": reason}
        if reply is not None:
            self.spend = self.spend.plus(reply.usage, reply.cost_usd)
            if reply.usage is not None:
                entry["usage"] = reply.usage.as_dict()
            entry["costUsd"] = float(reply.cost_usd) if reply.cost_usd is not None else None
            if reply.generation_stats:
                entry["generationStats"] = reply.generation_stats
        entry.update({key: value for key, value in extra.items() if value is not None})
        self.entries.append(entry)
        return entry

    @property
    def total_usage(self) -> dict[str, int]:
        return (self.spend.usage or Usage()).as_dict()

    @property
    def total_cost(self) -> Decimal:
        return self.spend.cost_usd if self.spend.cost_usd is not None else Decimal("0")


def _tools_json() -> str:
    return json.dumps(tool_definitions(), ensure_ascii=False, separators=(",", ":"))


def _call_kwargs(request: PlanRequest) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
    }
    if request.provider:
        kwargs["provider"] = request.provider
    if request.model:
        kwargs["model"] = request.model
    if request.seed is not None:
        kwargs["seed"] = request.seed
    return kwargs


def _planner_call(
    agent: Agent, request: PlanRequest, messages: list[dict[str, Any]], context: dict[str, Any]
) -> ChatResult:
    try:
        return agent_chat(agent=agent, messages=messages, context=context, **_call_kwargs(request))
    except LLMError as error:
        raise PlanningError(502, str(error)) from None


@dataclass
class _Verdict:
    """What one planner reply is worth: `outcome` is accepted, clarification, invalid_json,
    invalid_schema, invalid_plan or gaps; `feedback` tells the model what to fix."""

    outcome: str
    content: str
    job: DecomposerJob | None = None
    raw: Any = None
    issues: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    feedback: str = ""

    @property
    def usable(self) -> bool:
        return self.outcome in ("accepted", "clarification")

    @property
    def retry_reason(self) -> str:
        return {"invalid_json": REASON_PARSE, "gaps": REASON_GAPS}.get(
            self.outcome, REASON_VALIDATION
        )


def _assess(content: str) -> _Verdict:
    try:
        raw = extract_json(content)
    except ReplyParseError as error:
        return _Verdict(
            "invalid_json", content, error=str(error), feedback=parse_feedback(str(error))
        )
    try:
        job = parse_job(raw)
    except PlanError as error:
        return _Verdict(
            "invalid_schema",
            content,
            raw=raw,
            issues=error.issues,
            error=json.dumps(error.issues, ensure_ascii=False),
            feedback=schema_feedback(error.issues),
        )
    if job.clarification_needed:
        return _Verdict("clarification", content, job=job, raw=raw)
    issues = plan_issues(job)
    if issues:
        return _Verdict(
            "invalid_plan",
            content,
            job=job,
            raw=raw,
            issues=issues,
            error="\n".join(issue["message"] for issue in issues),
            feedback=plan_feedback(issues),
        )
    coverage, gaps = job.validation.coverage, job.validation.gaps
    if coverage.strip().lower() == "high" or not gaps:
        # A plan that is not "high" but names no gap is as good as it gets: it is accepted
        # like a high-coverage one (its coverage stays on record in planningAttempts).
        return _Verdict("accepted", content, job=job, raw=raw)
    return _Verdict(
        "gaps",
        content,
        job=job,
        raw=raw,
        error="Gaps: " + "; ".join(gaps),
        feedback=gaps_feedback(coverage, gaps),
    )


def _final_error(verdict: _Verdict) -> PlanningError:
    # The planner model, not the client or this server, failed: 502.
    if verdict.outcome == "invalid_json":
        return PlanningError(
            502,
            "LLM response is not valid JSON after multiple attempts",
            attempts=MAX_ATTEMPTS,
            responsePreview=verdict.content[:RESPONSE_PREVIEW_CHARS],
        )
    if verdict.outcome in ("invalid_schema", "invalid_plan"):
        return PlanningError(
            400,
            "Invalid DAG structure after multiple attempts",
            validation_errors=verdict.issues,
            attempts=MAX_ATTEMPTS,
            result=verdict.raw,
        )
    return PlanningError(
        502,
        "Failed to create DAG after maximum attempts",
        max_attempts=MAX_ATTEMPTS,
        attempts=MAX_ATTEMPTS,
        gaps=verdict.job.validation.gaps if verdict.job else [],
    )


def _plan_attempts(
    agent: Agent, request: PlanRequest, ledger: _Ledger
) -> tuple[DecomposerJob, ChatResult, int]:
    """Call the planner until a plan is usable (or asks a question); PlanningError otherwise."""
    stamp = current_date_text()
    context = {"tools": _tools_json(), "currentDate": stamp}
    goal = _DATE_PLACEHOLDER.sub(lambda _match: stamp, request.goal_text)
    messages: list[dict[str, Any]] = [{"role": "user", "content": goal}]
    reason = REASON_INITIAL
    for attempt in range(1, MAX_ATTEMPTS + 1):
        reply = _planner_call(agent, request, messages, context)
        verdict = _assess(reply.content or "")
        ledger.record(
            attempt,
            reason,
            reply,
            outcome=verdict.outcome,
            coverage=verdict.job.validation.coverage if verdict.job else None,
            errorMessage=verdict.error,
        )
        if verdict.usable and verdict.job is not None:
            return verdict.job, reply, attempt
        logger.info(
            "planning attempt %d of %d unusable agent=%s outcome=%s",
            attempt,
            MAX_ATTEMPTS,
            agent.name,
            verdict.outcome,
        )
        content = verdict.content
        shown = content if len(content) <= RETRY_REPLY_CHARS else content[:RETRY_REPLY_CHARS] + "…"
        # The model sees its last reply and what is wrong with it.
        messages = [
            {"role": "user", "content": goal},
            {"role": "assistant", "content": shown},
            {"role": "user", "content": verdict.feedback},
        ]
        reason = verdict.retry_reason
    raise _final_error(verdict)


# --- title ---------------------------------------------------------------------------------------
def clean_title(text: str | None) -> str | None:
    """The first non-empty line, without quotes, markdown or a `Title:` label, at most
    TITLE_MAX_CHARS characters; None when nothing is left."""
    for line in (text or "").splitlines():
        title = " ".join(line.split()).strip(_TITLE_TRIM)
        if title.lower().startswith("title:"):
            title = title[len("title:") :].strip(_TITLE_TRIM)
        if title:
            if len(title) > TITLE_MAX_CHARS:
                title = title[: TITLE_MAX_CHARS - 1].rstrip() + "…"
            return title
    return None


def plan_title(*, goal_text: str, attempt: int, ledger: _Ledger, agent: Agent | None) -> str | None:
    """A title from `agent` (the active TitleMaster); None when there is none or it fails."""
    if agent is None:
        logger.warning("no active %s agent: the DAG gets no title", TITLE_AGENT_NAME)
        return None
    try:
        reply = agent_chat(
            agent=agent, messages=[{"role": "user", "content": goal_text[:TITLE_PROMPT_CHARS]}]
        )
    except LLMError as error:
        logger.warning("title call failed: %s", error)
        ledger.record(attempt, REASON_TITLE, None, outcome="failed", errorMessage=str(error))
        return None
    title = clean_title(reply.content)
    ledger.record(
        attempt,
        REASON_TITLE,
        reply,
        outcome="titled" if title else "failed",
        errorMessage=None if title else "The title reply was empty.",
    )
    return title


# --- the service ---------------------------------------------------------------------------------
def dag_plan(*, request: PlanRequest, owner: Any, dag_id: str | None = None) -> PlanningResult:
    """Plan `request` and store the accepted plan as a DAG (id `dag_id`, else a bare new id)
    owned by `owner` (a user, or None for the anonymous local user).

    A plan that asks for clarification is returned without storing anything. Raises NotFound
    (planner agent), FieldInvalid (time zone) or PlanningError (cron, provider, the LLM call,
    or no usable plan after MAX_ATTEMPTS calls).
    """
    cron, zone = schedule_checked(request)
    provider_checked(request.provider, request.model)
    # The planner and the title agent in one read.
    agents = agents_get_active(names=[request.agent_name, TITLE_AGENT_NAME])
    agent = agents.get(request.agent_name)
    if agent is None:
        raise NotFound(planner_missing(request.agent_name))
    ledger = _Ledger()
    job, reply, attempts = _plan_attempts(agent, request, ledger)
    if job.clarification_needed:
        return PlanningResult(
            job=job, attempts=attempts, final_call=reply, attempt_log=ledger.entries
        )
    job = renumbered(job)
    job = job.model_copy(update={"original_request": request.goal_text})
    title = plan_title(
        goal_text=request.goal_text,
        attempt=attempts,
        ledger=ledger,
        agent=agents.get(TITLE_AGENT_NAME),
    )
    fields: dict[str, Any] = dict(
        id=dag_id or new_dag_id(),
        owner=owner,
        status="success",
        result=job_dict(job),
        usage=reply.usage.as_dict() if reply.usage else None,
        generation_stats=reply.generation_stats,
        attempts=attempts,
        params=request.params(),
        agent_name=request.agent_name,
        dag_title=title,
        cron_schedule=cron,
        schedule_active=bool(cron) and (request.schedule_active is None or request.schedule_active),
        timezone=zone,
        planning_total_usage=ledger.total_usage,
        planning_total_cost_usd=ledger.total_cost,
        planning_attempts=ledger.entries,
    )
    if not cron and dag_id is None:
        # A new id without a schedule: no beat row can exist to update, so one INSERT suffices.
        dag = Dag.objects.create(**fields)
    else:
        with transaction.atomic():
            dag = Dag.objects.create(**fields)
            dag_schedule_sync(dag=dag)
    logger.info(
        "dag planned id=%s agent=%s attempts=%d tasks=%d",
        dag.id,
        request.agent_name,
        attempts,
        len(job.sub_tasks),
    )
    return PlanningResult(
        job=job, attempts=attempts, final_call=reply, attempt_log=ledger.entries, dag=dag
    )
