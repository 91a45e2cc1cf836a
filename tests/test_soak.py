"""A short soak in every ``make test`` (``make soak`` runs the long one): mixed traffic from
several processes with a watcher, then exact counts, a complete feed and nothing left over."""

from __future__ import annotations

from .conftest import Servers
from .soak import check, run


def test_a_short_soak_keeps_every_count_exact(servers: Servers) -> None:
    url, _ = servers.redis()
    report = run(url, processes=3, seconds=4)
    assert check(report) == [], report
    assert report["writes"] > 0
