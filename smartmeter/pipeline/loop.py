"""The pipeline loop: the service behind `DBT_AUTO_RUN` (native `pipeline`, compose
`dbt-transformations`).

Every DBT_RUN_INTERVAL seconds it runs one cycle (smartmeter/pipeline/cycle.py). A cycle that
leaves a backlog is followed at once by the next, so a large backlog is caught up in bounded
batches back to back. When caught up, on their own schedules, it runs Iceberg maintenance
(PIPELINE_MAINTENANCE_INTERVAL: compaction, snapshot expiry, orphan files; under the write lock,
so never during a write) and the full dbt test suite (PIPELINE_FULL_TESTS_INTERVAL), and checks
free disk space. Its health is the age of its last successful cycle (an idle cycle counts: the
lakehouse is caught up), recorded in PostgreSQL for `./lakehouse status` and the compose
healthcheck.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime

from smartmeter.config import Settings
from smartmeter.errors import LakehouseError, PipelineGapError
from smartmeter.pipeline.cycle import CycleReport, Runner
from smartmeter.pipeline.store import PipelineStore

HEARTBEAT = "loop_heartbeat"
FULL_TESTS_DUE = "full_tests_last_at"
MAINTENANCE_DUE = "maintenance_last_at"


def _log(message: str) -> None:
    print(f"[pipeline] {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {message}", flush=True)


class Loop:
    def __init__(self, settings: Settings, log: Callable[[str], None] = _log) -> None:
        self.settings = settings
        self.log = log
        self.runner = Runner(settings, "loop", log)
        self.stopping = False

    def stop(self, signum=None, frame=None) -> None:
        self.stopping = True

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def _heartbeat(self, report: CycleReport | None, error: str | None, *, starting: bool = False) -> None:
        store = PipelineStore(self.settings)
        try:
            previous = json.loads(store.get_state(HEARTBEAT) or "{}")
            now = datetime.now(UTC).isoformat()
            beat = {
                "started_at": now if starting else previous.get("started_at", now),
                "last_cycle_at": now,
                "last_status": report.status if report else "error",
                "last_ok_at": (now if report and report.status in ("ok", "idle")
                               else None if starting else previous.get("last_ok_at")),
                "last_error": error,
                "interval_s": self.settings.dbt_run_interval_s,
                "behind": report.behind if report else previous.get("behind", {}),
            }
            store.set_state(HEARTBEAT, json.dumps(beat))
        finally:
            store.close()

    def _due(self, key: str, interval_s: int) -> bool:
        store = PipelineStore(self.settings)
        try:
            last = store.get_state(key)
        finally:
            store.close()
        return last is None or time.time() - float(last) >= interval_s

    def _done(self, key: str) -> None:
        store = PipelineStore(self.settings)
        try:
            store.set_state(key, str(time.time()))
        finally:
            store.close()

    def _scheduled_work(self) -> None:
        """Maintenance and the full tests, each when due; the loop is caught up when this runs."""
        if self._due(MAINTENANCE_DUE, self.settings.maintenance_interval_s):
            from smartmeter.pipeline.maintenance import maintain, parse_args, totals

            self.log(f"Iceberg maintenance (every {self.settings.maintenance_interval_s}s, "
                     f"keeping {self.settings.snapshot_retention} of snapshots)")
            reports = maintain(self.settings, parse_args([], self.settings), progress=lambda _: None)
            failed = [r for r in reports if r.error]
            self.log(f"maintenance of {totals(reports)}"
                     + (f"; FAILED on {', '.join(r.table for r in failed)}: {failed[0].error}" if failed else ""))
            self._done(MAINTENANCE_DUE)
        if not self.stopping and self._due(FULL_TESTS_DUE, self.settings.full_tests_interval_s):
            self.log(f"running the full dbt test suite (every {self.settings.full_tests_interval_s}s)")
            report = self.runner.full_tests()
            self.log(f"full tests {report.status}" + (f": {report.error}" if report.error else ""))
            self._done(FULL_TESTS_DUE)

    def _check_disk(self) -> str | None:
        """A warning when the disk holding the lakehouse's state is nearly full."""
        path = self.settings.home if self.settings.home.exists() else None
        if path is None:
            return None
        usage = shutil.disk_usage(path)
        free_pct = 100 * usage.free / usage.total
        if free_pct >= self.settings.disk_warn_free_pct:
            return None
        return (f"disk almost full: {free_pct:.1f}% ({usage.free / 2**30:.1f} GiB) free at {path}, "
                f"below DISK_WARN_FREE_PCT={self.settings.disk_warn_free_pct}; expire data or add space")

    def _cycle(self, number: int) -> tuple[CycleReport | None, str | None]:
        """One cycle, logged; its report (None when it could not run) and error."""
        try:
            report = self.runner.cycle()
        except PipelineGapError as exc:
            self.log(f"cycle {number} STOPPED: {exc}")
            return None, str(exc)
        except LakehouseError as exc:
            self.log(f"cycle {number} FAILED: {exc}; next attempt in {self.settings.dbt_run_interval_s}s")
            return None, str(exc)
        if report.status != "idle" or number == 1:
            self.log(f"cycle {number}: {report.summary()}")
        return report, report.error if report.status not in ("ok", "idle") else None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        interval = self.settings.dbt_run_interval_s
        if not self.settings.dbt_auto_run:
            self.log("DBT_AUTO_RUN=false: idle. Run the pipeline by hand: ./lakehouse dbt build, ./lakehouse catch-up "
                     "(in Docker: docker exec dbt-transformations dbt build).")
            while not self.stopping:
                self._sleep(3600)
            return 0
        self.log(f"starting: a cycle every {interval}s (DBT_RUN_INTERVAL), at most "
                 f"{self.settings.max_messages_per_partition:,} messages per partition each "
                 "(PIPELINE_MAX_MESSAGES_PER_PARTITION)")
        self._heartbeat(None, None, starting=True)
        cycles = 0
        while not self.stopping:
            started = time.monotonic()
            cycles += 1
            report, error = self._cycle(cycles)
            try:
                disk = self._check_disk()
                if disk:
                    self.log(f"WARNING {disk}")
                self._heartbeat(report, error or disk)
                caught_up = report is not None and report.status in ("ok", "idle") and report.total_behind == 0
                if caught_up and not self.stopping:
                    self._scheduled_work()
            except LakehouseError as exc:
                self.log(f"scheduled work failed: {exc}")
            if self.stopping:
                break
            if report is not None and report.status == "ok" and report.total_behind > 0:
                continue
            self._sleep(interval - (time.monotonic() - started))
        self.log(f"stopped after {cycles} cycle(s)")
        return 0


def loop_health(settings: Settings) -> tuple[bool, str]:
    """Healthy when the last successful cycle (or, before the first, the loop's start) is recent
    enough: within two intervals plus ten minutes for a long batch (PIPELINE_HEALTH_MAX_AGE
    overrides). With DBT_AUTO_RUN=false the loop idles by design and is healthy."""
    from smartmeter.config import env_int

    if not settings.dbt_auto_run:
        return True, "DBT_AUTO_RUN=false: idle by design"
    max_age = env_int("PIPELINE_HEALTH_MAX_AGE", 2 * settings.dbt_run_interval_s + 600)
    store = PipelineStore(settings)
    try:
        beat = json.loads(store.get_state(HEARTBEAT) or "{}")
    finally:
        store.close()
    if not beat:
        return False, "the loop has not started"
    if not beat.get("last_ok_at"):
        age = (datetime.now(UTC) - datetime.fromisoformat(beat["started_at"])).total_seconds()
        return age <= max_age, f"started {age:.0f}s ago, no successful cycle yet" + (
            f"; last error: {beat['last_error'].splitlines()[0][:200]}" if beat.get("last_error") else "")
    age = (datetime.now(UTC) - datetime.fromisoformat(beat["last_ok_at"])).total_seconds()
    behind = ", ".join(f"{topic} {count:,}" for topic, count in (beat.get("behind") or {}).items())
    text = f"last good cycle {age:.0f}s ago; behind {behind or 'nothing'}"
    if beat.get("last_error"):
        text += f"; last error: {beat['last_error'].splitlines()[0][:200]}"
    return age <= max_age, text
