"""Benchmarks of the dbt pipeline on the native stack (printed, never asserted).

1. ingest: rows/s from Kafka into stg_telemetry_messages and stg_telemetry_raw, for the large
   history batch (one dbt run of the two staging models);
2. incremental cost: the time of one `dbt run` (all models) for the same number of new readings
   on top of a small history (pipeline A) and a history `--factor` times larger (pipeline B);
   `dbt test` is timed too, since data tests scan whole tables;
3. freshness: the dbt loop (dbt-project/entrypoint.sh) with DBT_RUN_INTERVAL=30 while the
   simulator runs live; p95 of (end of the dbt run that made a reading visible in
   customer_usage_summary - reading timestamp).

It uses the test topics telemetry_raw_test / meter_fault_logs_test (recreated) and throwaway
schemas, so don't run it together with the integration tests. Examples:

    python -m bench.bench_pipeline                          # defaults: 50k history, x50, 100k new
    python -m bench.bench_pipeline --small-history 20000 --factor 50 --new 100000 --freshness-s 300
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smartmeter.config import REPO_ROOT, load_settings
from smartmeter.pipeline.topics import recreate_topics
from tests.helpers.pipeline import (
    FAULT_LOG_TEST_TOPIC,
    TELEMETRY_TEST_TOPIC,
    IsolatedPipeline,
    produce,
)


def readings(devices: list[tuple[str, str]], start: datetime, count: int, step_s: int) -> list[tuple[str, str]]:
    """`count` valid readings, round-robin over devices, every `step_s` seconds per device."""
    out = []
    step = 0
    while len(out) < count:
        at = (start + timedelta(seconds=step * step_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for device_id, customer_id in devices:
            if len(out) == count:
                break
            energy = round(0.05 + (hash((device_id, step)) % 800) / 1000, 3)
            out.append((device_id, (
                f'{{"device_id": "{device_id}", "customer_id": "{customer_id}", "timestamp": "{at}", '
                f'"metrics": {{"energy_kwh": {energy}, "voltage": 230.1, "battery_pct": 80, "register_kwh": 1000.0}}, '
                f'"status": "OK", "interval_minutes": {max(1, step_s // 60)}}}'
            )))
        step += 1
    return out


def run_results(pipeline: IsolatedPipeline) -> dict[str, tuple[float, int | None]]:
    path = Path(f"/tmp/dbt-target-{pipeline.suffix}/run_results.json")
    results = json.loads(path.read_text())["results"]
    return {r["unique_id"].split(".")[-1]: (r["execution_time"], (r.get("adapter_response") or {}).get("rows_affected"))
            for r in results}


def timed(pipeline: IsolatedPipeline, *args: str) -> tuple[float, dict]:
    started = time.monotonic()
    pipeline.dbt(*args, timeout_s=7200)
    return time.monotonic() - started, run_results(pipeline)


def print_models(title: str, results: dict) -> None:
    print(f"  {title}")
    for name, (seconds, rows) in sorted(results.items(), key=lambda kv: -kv[1][0])[:8]:
        print(f"    {name:32s} {seconds:7.1f} s  rows={rows}")


def bench_ingest_and_incremental(args, settings, devices) -> None:
    step_s = 60  # one reading per device per minute keeps the day count (and partitions) modest
    per_day = len(devices) * 86400 // step_s
    small, large, new = args.small_history, args.small_history * args.factor, args.new
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=(small + large + 2 * new) // per_day + 3)
    recreate_topics(settings, [TELEMETRY_TEST_TOPIC, FAULT_LOG_TEST_TOPIC])
    a, b = IsolatedPipeline(settings, suffix="bencha"), IsolatedPipeline(settings, suffix="benchb")
    for p in (a, b):
        p.drop_schemas()
        p.dbt("seed")
    cursor = start

    def send(count: int) -> None:
        nonlocal cursor
        batch = readings(devices, cursor, count, step_s)
        t0 = time.monotonic()
        produce(settings, TELEMETRY_TEST_TOPIC, batch)
        print(f"  produced {count:,} readings in {time.monotonic() - t0:.1f} s")
        cursor += timedelta(seconds=step_s * (count // len(devices) + 1))

    print(f"devices={len(devices)}, one reading per device per {step_s} s ({per_day:,} per day)")
    print(f"[A] history {small:,} readings")
    send(small)
    a.dbt("run", timeout_s=7200)
    send(new)
    seconds_a, results_a = timed(a, "run")
    test_a, _ = timed(a, "test", "--exclude-resource-type", "unit_test")
    print_models(f"[A] dbt run with {new:,} new readings on {small:,}: {seconds_a:.1f} s (dbt test {test_a:.1f} s)", results_a)

    print(f"[B] history {small + new + large:,} readings (= A's history, A's new batch and {large:,} more)")
    send(large)
    _, ingest = timed(b, "run", "--select", "+stg_telemetry_raw")
    landed = ingest["stg_telemetry_messages"]
    staged = ingest["stg_telemetry_raw"]
    total = small + new + large
    print(f"  ingest: stg_telemetry_messages {total:,} rows in {landed[0]:.1f} s = {total / landed[0]:,.0f} rows/s; "
          f"stg_telemetry_raw {staged[0]:.1f} s = {total / staged[0]:,.0f} rows/s")
    b.dbt("run", timeout_s=7200)
    send(new)
    seconds_b, results_b = timed(b, "run")
    test_b, _ = timed(b, "test", "--exclude-resource-type", "unit_test")
    print_models(f"[B] dbt run with {new:,} new readings on {total:,}: {seconds_b:.1f} s (dbt test {test_b:.1f} s)", results_b)
    ratio = seconds_b / seconds_a
    print(f"RESULT ingest_rows_per_s={total / landed[0]:,.0f} (stg_telemetry_messages), "
          f"incremental_run_s small={seconds_a:.1f} large={seconds_b:.1f} ratio={ratio:.2f} (history x{total / small:.0f}); "
          f"dbt test small={test_a:.1f} large={test_b:.1f}")
    if not args.keep:
        for p in (a, b):
            p.drop_schemas()


def bench_freshness(args, settings) -> None:
    recreate_topics(settings, [TELEMETRY_TEST_TOPIC, FAULT_LOG_TEST_TOPIC])
    p = IsolatedPipeline(settings, suffix="benchf")
    p.drop_schemas()
    p.dbt("build", "--exclude-resource-type", "unit_test")
    env = {**p.env(), "DBT_RUN_INTERVAL": str(args.interval), "DBT_TARGET_PATH": f"/tmp/dbt-target-{p.suffix}",
           "DBT_BIN": str(Path(sys.executable).with_name("dbt")), "DBT_PYTHON": sys.executable}
    log_path = Path(f"/tmp/bench-freshness-{p.suffix}.log")
    with log_path.open("w") as log:
        loop = subprocess.Popen(["bash", str(REPO_ROOT / "dbt-project" / "entrypoint.sh")], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        simulator = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "telemetry_simulator.py"), "--interval", "1", "--devices", "10", "--quiet",
             "--bootstrap-servers", settings.kafka_bootstrap_servers, "--topic", TELEMETRY_TEST_TOPIC,
             "--fault-log-topic", FAULT_LOG_TEST_TOPIC],
            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        window_start = datetime.now(UTC)
        time.sleep(args.freshness_s)
        os.killpg(simulator.pid, signal.SIGINT)
        simulator.wait(60)
        time.sleep(args.interval * 2 + 60)  # let the loop pick up the tail
        os.killpg(loop.pid, signal.SIGTERM)
        loop.wait(300)
    runs = []
    for line in log_path.read_text().splitlines():
        m = re.match(r"\[dbt-loop\] (\S+) run #\d+ ok: .* duration=([\d.]+)s", line)
        if m:
            runs.append(datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC))
    rows = p.query(f"select reading_at, loaded_at from iceberg.{p.staging}.stg_telemetry_raw "
                   f"where reading_at >= timestamp '{window_start:%Y-%m-%d %H:%M:%S} UTC'")
    lags = []
    for reading_at, loaded_at in rows:
        visible_at = next((end for end in runs if end >= loaded_at), None)
        if visible_at is not None:
            lags.append((visible_at - reading_at).total_seconds())
    if not lags:
        print(f"freshness: no readings measured (see {log_path})")
        return
    lags.sort()
    p95 = lags[min(len(lags) - 1, int(0.95 * len(lags)))]
    print(f"RESULT freshness interval={args.interval}s readings={len(lags)} runs={len(runs)} "
          f"median={statistics.median(lags):.1f}s p95={p95:.1f}s max={lags[-1]:.1f}s (loop log {log_path})")
    if not args.keep:
        p.drop_schemas()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small-history", type=int, default=50_000)
    parser.add_argument("--factor", type=int, default=50)
    parser.add_argument("--new", type=int, default=100_000)
    parser.add_argument("--interval", type=int, default=30, help="DBT_RUN_INTERVAL for the freshness run")
    parser.add_argument("--freshness-s", type=int, default=300, help="how long the simulator runs live")
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument("--skip-freshness", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark schemas")
    args = parser.parse_args(argv)
    settings = load_settings()
    probe = IsolatedPipeline(settings, suffix="benchprobe")
    devices = sorted(probe.query("select device_id, customer_id from postgresql.public.devices where is_active"))
    if not args.skip_incremental:
        bench_ingest_and_incremental(args, settings, devices)
    if not args.skip_freshness:
        bench_freshness(args, settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
