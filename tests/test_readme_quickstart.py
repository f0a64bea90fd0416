"""The README's first-DAG lines, run as written by bash against a real daphne and a real
worker process, with the scripted chat server standing in for the LLM."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.embedded_redis import free_port, wait_for_port
from tests.factories import AgentFactory, UserFactory
from tests.fakes.openai_server import ChatReply
from tests.processes import child_database_env, worker_process

pytestmark = pytest.mark.django_db(transaction=True)

README = Path(settings.BASE_DIR) / "README.md"
DAPHNE = Path(sys.executable).with_name("daphne")


def first_dag_lines() -> str:
    text = README.read_text()
    block = re.search(r"<!-- first-dag[^>]*-->\n```bash\n(.*?)```", text, re.S)
    assert block, "the README lost its first-DAG block"
    return block.group(1)


def plan_json() -> str:
    tasks = [
        {
            "id": f"t{n}",
            "description": f"Point {n}",
            "thought": "needed",
            "action_type": "inference",
            "tool_or_prompt": {"name": "InferenceAgent", "params": {"prompt": f"Point {n}"}},
            "expected_output": "text",
            "dependencies": ["none"] if n == 1 else [f"t{n - 1}"],
        }
        for n in (1, 2)
    ]
    job = {
        "original_request": "sky",
        "intent": {"primary": "explain", "sub_intents": []},
        "entities": [],
        "sub_tasks": tasks,
        "synthesis_plan": "Combine.",
        "validation": {"coverage": "high", "gaps": [], "iteration_triggers": []},
        "clarification_needed": False,
    }
    return "```json\n" + json.dumps(job) + "\n```"


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's lines use curl")
def test_the_readme_first_dag_lines_work_as_written(fake_llm, tmp_path):
    UserFactory(username="admin", is_staff=True, is_superuser=True)
    AgentFactory(name="DecomposerV8", prompt_template="Plan. {{tools}}", active=True)
    AgentFactory(name="InferenceAgent", prompt_template="Answer.", active=True)

    def reply(request: dict) -> ChatReply:
        text = "\n".join(m.get("content") or "" for m in request["messages"])
        if text.startswith("Plan."):
            return ChatReply(content=plan_json())
        if "## Synthesis plan" in text:
            return ChatReply(content="Rayleigh scattering, in three points.")
        return ChatReply(content="a point")

    fake_llm.responder = reply
    port = free_port()
    env = {
        **os.environ,
        **child_database_env(),
        "ASYNC_AGENT_SKIP_DOTENV": "1",
        "REDIS_URL": settings.REDIS_URL,
        "OPENAI_BASE_URL": fake_llm.base_url,
        "OPENAI_API_KEY": "sk-test-fake",
        "LLM_PROVIDER": "openai",
        "LLM_MODEL": "gpt-4o-mini",
    }
    if connection.vendor == "sqlite":
        env.pop("DATABASE_URL", None)
    log = (tmp_path / "daphne.log").open("wb")
    web = subprocess.Popen(
        [str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    worker = worker_process(fake_llm)
    try:
        wait_for_port(port, timeout=60)
        script = first_dag_lines().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        for process in (web, worker):
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        log.close()

    assert done.returncode == 0, done.stderr + (tmp_path / "daphne.log").read_text()
    assert "event: execution.completed" in done.stdout
    assert done.stdout.rstrip().endswith("Rayleigh scattering, in three points.")
