"""A scripted OpenAI-compatible chat-completions server for the benchmarks (stdlib only).

    python bench/fake_llm.py --port 0 [--plans DIR]     # prints "ready <port>" when listening

One asyncio loop, HTTP/1.1 keep-alive, so a thousand waiting calls cost nothing and the server
is never the bottleneck. It runs in its own process, away from the harness's event loop.

What it answers is decided by markers the harness writes into the plans it asks for:

- a planner call (the system prompt describes `sub_tasks` and a user message holds
  `[bench-plan KEY]`): the plan posted earlier to `POST /bench/plans/KEY`, in a ```json block;
- a DAG node (`[bench-node ms=N]` in its instruction): "ok" after N ms; `[bench-node hold=KEY]`
  waits until `POST /bench/release/KEY` (or 10 minutes);
- the synthesis (`[bench-synth ms=N]` in the synthesis plan): "ok" after N ms;
- anything else (the title call, a node without a marker): a short text at once.

`GET /bench/stats` counts the calls by kind. `GET /bench/arrivals` lists the calls that arrived
since the last time it was asked, as [kind, time.monotonic() at arrival] (one clock for every
process on the machine, so the harness can place them on its own timeline).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import time
from collections import Counter
from typing import Any

PLAN = re.compile(r"\[bench-plan ([A-Za-z0-9_.-]+)\]")
NODE = re.compile(r"\[bench-node (ms|hold)=([A-Za-z0-9_.-]+)\]")
SYNTH = re.compile(r"\[bench-synth ms=(\d+(?:\.\d+)?)\]")
HOLD_LIMIT_SECONDS = 600.0


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


class Fake:
    def __init__(self) -> None:
        self.plans: dict[str, str] = {}
        self.holds: dict[str, asyncio.Event] = {}
        self.stats: Counter[str] = Counter()
        self.ids = 0
        self.arrivals: list[tuple[str, float]] = []

    def hold(self, key: str) -> asyncio.Event:
        return self.holds.setdefault(key, asyncio.Event())

    async def chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        arrived = time.monotonic()
        messages = body.get("messages") or []
        system = " ".join(_text(m.get("content")) for m in messages if m.get("role") == "system")
        user = " ".join(_text(m.get("content")) for m in messages if m.get("role") != "system")
        plan = PLAN.search(user)
        node = NODE.search(user)
        synth = SYNTH.search(user)
        if plan and "sub_tasks" in system:
            kind = "planner"
            key = plan.group(1)
            if key not in self.plans:
                return 500, {"error": {"message": f"no bench plan {key!r}", "type": "bench"}}
            content = "```json\n" + self.plans[key] + "\n```"
        elif node:
            kind = "node"
            if node.group(1) == "hold":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.hold(node.group(2)).wait(), timeout=HOLD_LIMIT_SECONDS
                    )
            elif float(node.group(2)) > 0:
                await asyncio.sleep(float(node.group(2)) / 1000)
            content = "ok"
        elif synth:
            kind = "synthesis"
            if float(synth.group(1)) > 0:
                await asyncio.sleep(float(synth.group(1)) / 1000)
            content = "# Report\n\nok"
        else:
            kind = "other"
            content = "Bench Run"
        self.stats[kind] += 1
        self.arrivals.append((kind, arrived))
        self.ids += 1
        return 200, {
            "id": f"chatcmpl-bench-{self.ids}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    async def route(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        path = path.split("?", 1)[0]
        if method == "POST" and path.endswith("/chat/completions"):
            try:
                return await self.chat(json.loads(body or b"{}"))
            except json.JSONDecodeError:
                return 400, {"error": {"message": "bad json", "type": "bench"}}
        if method == "GET" and path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}
        if method == "POST" and path.startswith("/bench/plans/"):
            self.plans[path.rsplit("/", 1)[1]] = body.decode()
            return 200, {"ok": True}
        if method == "POST" and path.startswith("/bench/release/"):
            self.hold(path.rsplit("/", 1)[1]).set()
            return 200, {"ok": True}
        if method == "GET" and path == "/bench/arrivals":
            arrivals, self.arrivals = self.arrivals, []
            return 200, {"arrivals": arrivals}
        if method == "GET" and path == "/bench/stats":
            return 200, dict(self.stats)
        return 404, {"error": {"message": "not found", "type": "bench"}}

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, version = ([*lines[0].split(" "), "", "", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                status, payload = await self.route(method, path, body)
                data = json.dumps(payload).encode()
                close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
                writer.write(
                    (
                        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                        "Content-Type: application/json\r\n"
                        f"Content-Length: {len(data)}\r\n"
                        f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
                    ).encode()
                    + data
                )
                await writer.drain()
                if close:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    fake = Fake()
    server = await asyncio.start_server(fake.serve, args.host, args.port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"ready {port}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
