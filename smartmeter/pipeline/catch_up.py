"""`./lakehouse catch-up`: pipeline cycles back to back until no topic has a backlog."""

from __future__ import annotations

import time
from collections.abc import Callable

from smartmeter.config import Settings
from smartmeter.errors import LakehouseError
from smartmeter.pipeline.cycle import Runner


def catch_up(settings: Settings, *, max_cycles: int | None = None, progress: Callable[[str], None] = print,
             capture: bool = False) -> int:
    """Run cycles until one plans nothing beyond what it takes; 0 when caught up. `capture` keeps
    dbt's own output out of the terminal (benchmarks print only the summaries)."""
    runner = Runner(settings, "catch-up", progress)
    started = time.monotonic()
    cycle = 0
    while max_cycles is None or cycle < max_cycles:
        cycle += 1
        report = runner.cycle(capture=capture)
        progress(f"cycle {cycle}: {report.summary()}")
        if report.status not in ("ok", "idle"):
            raise LakehouseError(f"catch-up stopped: cycle {cycle} {report.status}: {report.error or report.reason}")
        if report.total_behind == 0:
            progress(f"caught up after {cycle} cycle(s) in {time.monotonic() - started:.1f}s")
            return 0
    raise LakehouseError(f"still behind after {max_cycles} cycle(s): {report.behind}")
