"""Plays the worker for the event-delivery row: stores execution events through the app's own
service (`dags.events.emit_execution_event`), as a worker does while a node runs.

Started by bench/run.py with the worker's environment (same database, same Redis). It reads one
JSON command a line on stdin, `{"execution_id": ..., "number": n}`, stores one `tool.progress`
event in a transaction and answers `{"seq": ..., "committed": <time.monotonic() right after the
commit>}`. CLOCK_MONOTONIC is one clock for every process on the machine, so the harness
compares it with the moment its SSE clients read the event.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    import django

    django.setup()
    from django.db import transaction

    from dags.events import emit_execution_event

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        committed: list[float] = []
        with transaction.atomic():
            # Registered first, so it runs right after the commit, before the publication.
            transaction.on_commit(lambda done=committed: done.append(time.monotonic()))
            event = emit_execution_event(
                execution_id=command["execution_id"],
                type="tool.progress",
                payload={
                    "toolName": "bench",
                    "message": f"progress {command['number']}",
                    "subStepId": "001",
                },
            )
        sys.stdout.write(json.dumps({"seq": event.seq, "committed": committed[0]}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
