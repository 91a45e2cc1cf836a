"""``python -m benchmarks [--quick] [--out DIR] [--url URL] [--only TEXT]``: run the workloads,
write results."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import click
import redis
from tests.servers import standalone

from motia_state.backends.embedded import valkey_binary

from . import report, workloads

ROOT = Path(__file__).resolve().parents[1]
TIME_LIMIT_S = 600


def _machine() -> dict[str, object]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "redis-py": version("redis"),
        "hiredis": version("hiredis"),
    }


@click.command()
@click.option("--quick", is_flag=True, help="Small sizes: a smoke run of every workload.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=ROOT / "benchmarks" / "results",
    show_default=True,
    help="Folder for latest.json and latest.png.",
)
@click.option(
    "--url",
    default=None,
    help="Benchmark an existing server instead of starting one "
    "(the memory comparison, which flushes the server, is then skipped).",
)
@click.option(
    "--only",
    default=None,
    help="Run only the suites whose name contains this text; prints, writes nothing.",
)
def main(quick: bool, out: Path, url: str | None, only: str | None) -> None:
    """Measure motia-state against raw redis-py and Motia v0's adapter, in one run."""
    sizes = workloads.QUICK if quick else workloads.FULL
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if url is None:
            binary = shutil.which("redis-server") or valkey_binary()
            server = standalone(
                binary,
                ROOT / "docker" / "redis.conf",
                Path(tmp) / "server",
                "--appendonly",
                "no",
                "--save",
                "",
            )
            url = server.url
        try:
            info = redis.Redis.from_url(url).info("server")
            server_name = (
                f"{'valkey' if 'valkey_version' in info else 'redis'} "
                f"{info.get('valkey_version', info['redis_version'])}"
            )
            click.echo(f"benchmarking against {server_name}, {'quick' if quick else 'full'} sizes")
            bench = workloads.Bench(url, sizes, click.echo)
            for name, suite in workloads.SUITES:
                if only is not None and only not in name:
                    continue
                click.echo(f"{name}:")
                suite(bench)
                if time.monotonic() - started > TIME_LIMIT_S:
                    bench.notes.append(f"stopped after '{name}': over {TIME_LIMIT_S} s")
                    break
            if only is not None:
                return
            memory = workloads.memory(bench) if server is not None else None
        finally:
            if server is not None:
                server.stop()
    s = sizes
    rows = report.targets(bench.results, memory, s.mid_group, s.large_group, s.other_keys)
    goal_rows = report.goals(bench.results, s.mid_group, s.large_group)
    report.table(bench.results, rows, click.echo)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "sizes": "quick" if quick else "full",
        "server": server_name,
        "machine": _machine(),
        "seconds": round(time.monotonic() - started, 1),
        "notes": bench.notes,
        "exact": bench.exact,
        "sweep": bench.sweep,
        "server_time": (
            "results[].server: INFO commandstats, reset before each timed round of an "
            "implementation and read after it, summed over its rounds; only the workload's "
            "top-level commands (not those its scripts or EXEC ran, whose time is inside "
            "theirs; see benchmarks.measure.top_level); usec and calls per op, or per item"
        ),
    }
    report.write_json(out / "latest.json", meta, bench.results, memory, rows, goal_rows)
    drew = report.chart(
        out / "latest.png",
        bench.results,
        f"motia-state vs baselines, {server_name}, {meta['machine']['cores']} cores",
    )
    click.echo(
        f"\nwrote {out / 'latest.json'}"
        + (
            f" and {out / 'latest.png'}"
            if drew
            else " (no chart: pip install 'motia-state[bench]')"
        )
    )
    click.echo(f"{meta['seconds']} s")
    report.goal_table(goal_rows, click.echo)


if __name__ == "__main__":
    sys.exit(main())
