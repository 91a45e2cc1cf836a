"""The exactly-once workflow under faults (tests/exactly_once.py), short: worker processes
SIGKILLed at random points and retried with the same invocation ids, the server SIGKILLed and
restarted from its AOF once, the event consumer killed and succeeded; then every counter,
event and barrier is checked. ``make soak`` runs a longer one."""

from __future__ import annotations

import uuid

from .conftest import Servers
from .exactly_once import check, run
from .test_faults import BINARY, DURABLE


def test_a_workflow_under_faults_runs_every_step_once(servers: Servers) -> None:
    server = servers.start(BINARY, "exactly-once", *DURABLE)
    port = server.port
    holder = [server]

    def restart() -> None:
        old = holder[0]
        assert old.proc is not None
        old.proc.kill()  # SIGKILL: what survives is what the AOF has, fsynced on every write
        old.proc.wait()
        old.proc = None
        holder[0] = servers.start(BINARY, "exactly-once", *DURABLE, port=port)

    options = {"prefix": f"once-{uuid.uuid4().hex[:6]}:", "cleanup_interval": None, "retries": 8}
    report = run(server.url, options, orders=24, workers=3, crash_rate=0.08, restart=restart)
    assert check(server.url, options, report) == [], report
    # the faults did happen
    assert report.restarts == 1
    assert sum(report.self_kills.values()) > 0
    assert report.retried > 0
    assert report.consumer_kills == 1
