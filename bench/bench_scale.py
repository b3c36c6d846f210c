"""The pipeline at a real utility's size, on the native stack (printed, never asserted).

    python -m bench.bench_scale scale --meters 100000 --days 1      # backfill, then ./lakehouse catch-up
    python -m bench.bench_scale freshness --meters 100000 --minutes 60 --interval 30
    python -m bench.bench_scale idle

`scale` provisions the meters (idempotent), creates the tables of an isolated scope (schemas
*_bench) with a cycle on empty topics (as a fresh install's first run does; `--cold` skips it),
backfills `--days` days into the test topics, runs catch-up cycles and prints: the simulator's time, each
cycle, each model's time summed over the cycles, rows/s per stage, the peak resident memory of
every service, the wall time from the start of the backfill until the marts are caught up, and
whether the marts' total kWh equals the simulator's. `freshness` runs the simulator live at a real
15-minute cadence with the loop on and prints the p95 of (end of the run that made a reading
visible in customer_usage_summary - the reading's timestamp). `idle` times cycles with nothing new.

The main pipeline loop is stopped while a benchmark runs (it would compete for the two cores) and
started again afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from smartmeter.config import REPO_ROOT, TEST_TOPICS, TRINO_DBT_USER, Settings, load_settings
from smartmeter.native.layout import Layout
from smartmeter.native.supervisor import Supervisor
from smartmeter.pipeline.cycle import Runner
from smartmeter.pipeline.restatements import PUBLISHED_MARTS, STATE_PREFIX, Checkpoint, RestatementLog
from smartmeter.pipeline.store import PipelineStore, connect
from smartmeter.pipeline.topics import recreate_topics
from smartmeter.trino_sql import TrinoSession, query

TELEMETRY_TOPIC, FAULT_LOG_TOPIC = TEST_TOPICS
SCOPE = "bench"
ALERTS_TOPIC = f"meter_alerts_{SCOPE}"


def scoped(settings: Settings, **changes) -> Settings:
    return dataclasses.replace(settings, dbt_schema_suffix=SCOPE, telemetry_topic=TELEMETRY_TOPIC,
                               fault_log_topic=FAULT_LOG_TOPIC, alerts_topic=ALERTS_TOPIC, **changes)


# -- memory ------------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            pass
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, MB."""
    total_kb, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total_kb += int(match.group(1)) if match else 0
        stack += _children(current)
    return total_kb / 1024


class MemorySampler(threading.Thread):
    """Peak resident memory per service (and of this benchmark's own process tree), once a second."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.supervisor = Supervisor(Layout(settings.home))
        self.peaks: dict[str, float] = defaultdict(float)
        self.peak_total = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            sample = {}
            for name in self.supervisor.programs():
                info = self.supervisor.info(name)
                if info is not None and info.state == "RUNNING":
                    sample[name] = tree_rss_mb(info.pid)
            sample["runner+dbt+simulator"] = tree_rss_mb(os.getpid())
            for name, mb in sample.items():
                self.peaks[name] = max(self.peaks[name], mb)
            self.peak_total = max(self.peak_total, sum(sample.values()))

    def report(self) -> str:
        lines = [f"    {name:<22} {mb:8.0f} MB" for name, mb in sorted(self.peaks.items(), key=lambda kv: -kv[1])]
        return "\n".join(lines + [f"    {'whole stack (at once)':<22} {self.peak_total:8.0f} MB"])


# -- helpers -----------------------------------------------------------------------------------

def lakehouse(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "smartmeter", *args], cwd=REPO_ROOT, check=True)


def simulator(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([sys.executable, "telemetry_simulator.py", "--topic", TELEMETRY_TOPIC,
                             "--fault-log-topic", FAULT_LOG_TOPIC, *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise SystemExit(f"simulator failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def reset_scope(settings: Settings) -> None:
    """Empty schemas and no record for the benchmark's scope."""
    for base in ("marts", "intermediate", "staging"):
        schema = settings.schema(base)
        tables = query(settings, "select table_name, table_type from iceberg.information_schema.tables "
                                 f"where table_schema = '{schema}'")[1]
        for name, kind in tables:
            query(settings, f'drop {"view" if kind == "VIEW" else "table"} if exists iceberg."{schema}"."{name}"')
    conn = connect(settings)
    with conn.cursor() as cur:
        cur.execute("delete from pipeline.run_offsets where run_id in (select run_id from pipeline.runs where scope = %s)",
                    (SCOPE,))
        for table in ("runs", "gaps", "state", "alert_devices", "alert_offsets"):
            cur.execute(f"delete from pipeline.{table} where scope = %s", (SCOPE,))
    conn.close()


class LoopPaused:
    """The main pipeline loop stopped for the benchmark, started again after it."""

    def __init__(self, settings: Settings) -> None:
        self.supervisor = Supervisor(Layout(settings.home))
        self.was_running = False

    def __enter__(self) -> LoopPaused:
        info = self.supervisor.info("pipeline")
        self.was_running = info is not None and info.state == "RUNNING"
        if self.was_running:
            self.supervisor.stop_process("pipeline")
        return self

    def __exit__(self, *exc) -> None:
        if self.was_running:
            self.supervisor.start_process("pipeline")


def provision(meters: int) -> None:
    started = time.monotonic()
    simulator("--provision-customers", str(meters // 2), "--provision-devices", str(meters))
    print(f"  provisioned {meters:,} meters ({meters // 2:,} customers) in {time.monotonic() - started:.1f}s")


# -- scale -------------------------------------------------------------------------------------

def bench_scale(args, settings: Settings) -> None:
    bench = scoped(settings, **({"max_messages_per_partition": args.max_per_partition} if args.max_per_partition else {}))
    print(f"== scale: {args.meters:,} meters, {args.days} day(s) at 15 minutes, at most "
          f"{bench.max_messages_per_partition:,} messages per partition per cycle")
    provision(args.meters)
    recreate_topics(settings, [TELEMETRY_TOPIC, FAULT_LOG_TOPIC, ALERTS_TOPIC], timeout_s=120)
    reset_scope(bench)
    runner = Runner(bench, "catch-up", progress=lambda _: None)
    if not args.cold:
        # As after ./initial-setup.sh, whose loop's first run builds every table on empty topics.
        setup = runner.cycle(capture=True)
        print(f"  tables created on empty topics (not timed below): {setup.status} in {setup.seconds:.1f}s")
    # Days that ended before yesterday: every customer's day has then ended, past the restatement
    # grace, when the first cycle publishes, whatever the time of day (restate_everything).
    start = args.start or (datetime.date.today() - datetime.timedelta(days=args.days + 1)).isoformat()
    print(f"  backfill from {start}, {args.days} day(s)")
    sampler = MemorySampler(settings)
    sampler.start()
    started = time.monotonic()
    output = simulator("--backfill-days", str(args.days), "--seed", "7", "--fault-rate", "0.02", "--quiet",
                       "--start", start)
    simulator_s = time.monotonic() - started
    readings = int(re.search(r"Readings generated:\s+([\d,]+)", output).group(1).replace(",", ""))
    simulated_kwh = float(re.search(r"\(([\d,.]+) kWh\)", output).group(1).replace(",", ""))
    print(f"  simulator: {readings:,} readings in {simulator_s:.1f}s ({readings / simulator_s:,.0f}/s)")
    models: dict[str, float] = defaultdict(float)
    rows: dict[str, int] = defaultdict(int)
    cycle = 0
    first_published: dict[str, Checkpoint] = {}
    catch_up_started = time.monotonic()
    try:
        while True:
            cycle += 1
            report = runner.cycle(capture=True)
            print(f"  cycle {cycle}: {report.summary()}", flush=True)
            if cycle == 1:
                first_published = published_snapshots(bench, report.run_id)
            for node in report.nodes:
                if node.resource_type == "model":
                    models[node.name] += node.seconds
                    rows[node.name] += node.rows or 0
            if report.status not in ("ok", "idle"):
                raise SystemExit(f"cycle {cycle} failed: {report.error}")
            if report.total_behind == 0:
                break
    finally:
        # Printed when a cycle fails too: a failure at scale is when its memory matters most.
        sampler.stopped.set()
        print_totals(models, rows, sampler)
    caught_up_s = time.monotonic() - catch_up_started
    wall_s = time.monotonic() - started
    print(f"  catch-up: {cycle} cycle(s) in {caught_up_s:.1f}s")
    marts = query(bench, f"select sum(total_energy_kwh) from iceberg.{bench.schema('marts')}.customer_usage_summary")[1][0][0]
    print(f"  total kWh: marts {marts:,.3f}, simulator {simulated_kwh:,.3f}, "
          f"{'EQUAL' if abs(marts - simulated_kwh) < 1e-3 else 'DIFFERENT'}")
    print(f"RESULT scale meters={args.meters} days={args.days} readings={readings} simulator_s={simulator_s:.1f} "
          f"catch_up_s={caught_up_s:.1f} cycles={cycle} end_to_end_s={wall_s:.1f} (goal <= 300 for 1 day, "
          f"ratio {wall_s / (300 * args.days):.2f}) peak_stack_mb={sampler.peak_total:.0f}")
    if cycle > 1:
        restate_everything(bench, first_published, report.run_id)


def print_totals(models: dict[str, float], rows: dict[str, int], sampler: MemorySampler) -> None:
    print("  time per model, summed over the cycles (rows written):")
    for name, seconds in sorted(models.items(), key=lambda kv: -kv[1]):
        rate = f", {rows[name] / seconds:,.0f} rows/s" if name in ("stg_telemetry_messages", "stg_telemetry_raw") else ""
        print(f"    {name:<28} {seconds:7.1f}s  rows {rows[name]:>12,}{rate}")
    print("  peak resident memory:")
    print(sampler.report())


def published_snapshots(settings: Settings, run_id: int) -> dict[str, Checkpoint]:
    log = RestatementLog(settings, progress=lambda _: None)
    with TrinoSession(log.settings) as trino:
        return {m.name: Checkpoint(log.current_snapshot(trino, m), run_id) for m in PUBLISHED_MARTS}


def restate_everything(settings: Settings, first: dict[str, Checkpoint], run_id: int) -> None:
    """The restatement log's worst case: as if the first cycle's numbers had been published, every
    customer-day the later cycles completed is restated at once."""
    store = PipelineStore(settings)
    sampler = MemorySampler(settings)
    sampler.start()
    try:
        for name, checkpoint in first.items():
            store.set_state(STATE_PREFIX + name, str(checkpoint))
        started = time.monotonic()
        logged = RestatementLog(settings, progress=lambda _: None).record(store, run_id)
        seconds = time.monotonic() - started
    finally:
        sampler.stopped.set()
        store.close()
    print(f"RESULT restatements: every customer-day restated at once: {logged:,} rows logged in {seconds:.1f}s, "
          f"trino peak {sampler.peaks['trino']:.0f} MB")


# -- freshness ---------------------------------------------------------------------------------

def bench_freshness(args, settings: Settings) -> None:
    bench = scoped(settings, dbt_run_interval_s=args.interval)
    print(f"== freshness: {args.meters:,} meters live at a 15-minute cadence for {args.minutes} min, loop every "
          f"{args.interval}s")
    provision(args.meters)
    recreate_topics(settings, [TELEMETRY_TOPIC, FAULT_LOG_TOPIC, ALERTS_TOPIC], timeout_s=120)
    reset_scope(bench)
    print("  first cycle (builds the scope's tables) ...", flush=True)
    Runner(bench, "manual", progress=lambda _: None).cycle(force=True, capture=True)
    env = {**os.environ, "DBT_SCHEMA_SUFFIX": SCOPE, "TELEMETRY_TOPIC": TELEMETRY_TOPIC, "FAULT_LOG_TOPIC": FAULT_LOG_TOPIC,
           "ALERTS_TOPIC": ALERTS_TOPIC,
           "DBT_RUN_INTERVAL": str(args.interval), "PIPELINE_MAINTENANCE_INTERVAL": "86400",
           "PIPELINE_FULL_TESTS_INTERVAL": "86400", "DBT_USE_COLORS": "false"}
    log = settings.home / "logs" / "bench-freshness-loop.log"
    with log.open("w") as out:
        loop = subprocess.Popen([sys.executable, "-m", "smartmeter", "pipeline", "loop"], cwd=REPO_ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    live = subprocess.Popen([sys.executable, "telemetry_simulator.py", "--topic", TELEMETRY_TOPIC, "--fault-log-topic",
                             FAULT_LOG_TOPIC, "--interval", "900", "--devices", str(args.meters), "--customers",
                             str(args.meters), "--quiet", "--fault-rate", "0.02"], cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    started = time.time()
    try:
        time.sleep(args.minutes * 60)
    finally:
        live.send_signal(signal.SIGINT)
        live.wait(timeout=300)
        time.sleep(args.interval * 3)
        loop.send_signal(signal.SIGTERM)
        loop.wait(timeout=600)
    visible, cycles = _freshness(bench, started)
    if not visible:
        raise SystemExit(f"no reading became visible; see {log}")
    print(f"  readings measured: {len(visible):,}; cycles with data: {len(cycles)}; cycle seconds "
          f"{', '.join(f'{c:.1f}' for c in cycles)}")
    # The meters start live with no earlier reading today, so the first round writes each
    # meter's day from midnight: a cost a utility's meters pay at 00:15, not during the day.
    for label, ages in [("all rounds", [age for _, age in visible]),
                        ("after the first round", [age for at, age in visible if at >= started + 450])]:
        if len(ages) < 2:
            continue
        p95 = statistics.quantiles(ages, n=20)[18]
        print(f"RESULT freshness ({label}) p50={statistics.median(ages):.1f}s p95={p95:.1f}s (goal <= 60, "
              f"ratio {p95 / 60:.2f}) max={max(ages):.1f}s over {len(ages):,} readings")


def _freshness(settings: Settings, since: float) -> tuple[list[tuple[float, float]], list[float]]:
    """(reading timestamp, seconds from it to the end of the run that loaded it) for each reading
    (the marts are visible when the run ends), and the runs' durations in run order."""
    schema = settings.schema("staging")
    store = PipelineStore(settings)
    try:
        runs = {run.run_id: run for run in store.recent_runs(10_000) if run.status == "ok" and run.messages_taken}
    finally:
        store.close()
    visible: list[tuple[float, float]] = []
    for run_id, run in sorted(runs.items()):
        rows = query(settings, f"select to_unixtime(reading_at), count(*) from iceberg.{schema}.stg_telemetry_messages "
                               f"where batch_id = {run_id} and reject_reason is null group by 1")[1]
        finished = run.finished_at.timestamp()
        for reading_at, count in rows:
            if reading_at >= since:
                visible += [(reading_at, finished - reading_at)] * int(count)
    return visible, [run.duration_s for _, run in sorted(runs.items())]


# -- idle --------------------------------------------------------------------------------------

def bench_idle(args, settings: Settings) -> None:
    bench = scoped(settings)
    runner = Runner(bench, "manual", progress=lambda _: None)
    runner.cycle(capture=True)
    times = []
    for _ in range(args.repeat):
        started = time.monotonic()
        report = runner.cycle(capture=True)
        times.append(time.monotonic() - started)
        assert report.status == "idle", report.summary()
    print(f"RESULT idle_cycle median={statistics.median(times):.2f}s max={max(times):.2f}s over {args.repeat} "
          f"(goal <= 5 s, ratio {statistics.median(times) / 5:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    scale = sub.add_parser("scale")
    scale.add_argument("--meters", type=int, default=100_000)
    scale.add_argument("--days", type=int, default=1)
    scale.add_argument("--start", help="first local day of the backfill (default: --days + 1 days ago)")
    scale.add_argument("--max-per-partition", type=int, help="PIPELINE_MAX_MESSAGES_PER_PARTITION for the run")
    scale.add_argument("--cold", action="store_true",
                       help="no tables before the backfill: the first cycle builds every model whole on it")
    fresh = sub.add_parser("freshness")
    fresh.add_argument("--meters", type=int, default=100_000)
    fresh.add_argument("--minutes", type=int, default=60)
    fresh.add_argument("--interval", type=int, default=30)
    idle = sub.add_parser("idle")
    idle.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    # The benchmarks write the lakehouse as the pipeline does: as the dbt user.
    settings = load_settings().as_trino(TRINO_DBT_USER)
    with LoopPaused(settings):
        {"scale": bench_scale, "freshness": bench_freshness, "idle": bench_idle}[args.what](args, settings)


if __name__ == "__main__":
    main()
