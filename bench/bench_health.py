"""Health rules against the simulator's ground truth, at a utility's size (printed, never asserted).

    python -m bench.bench_health --meters 2000 --days 7 --seed 42 --fault-rate 0.1

Provisions the meters (idempotent), backfills `--days` local days of `--meters` meters with fault
episodes into the test topics, runs catch-up in the benchmarks' isolated scope (schemas *_bench,
as bench_scale), builds iceberg.marts_bench.health_score_evaluation and prints it: precision and
recall per fault type at the status the fault deserves, and overall. The goal is 0.9 for both on
every fault type.

The ground truth is PostgreSQL's fault_labels, which every simulator run adds to: the labels that
overlap the simulated window are deleted first (as the stack's admin), so an earlier run with
another seed cannot count as a fault here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import psycopg2

from bench.bench_scale import (
    ALERTS_TOPIC,
    FAULT_LOG_TOPIC,
    TELEMETRY_TOPIC,
    LoopPaused,
    provision,
    reset_scope,
    scoped,
    simulator,
)
from smartmeter.config import TRINO_DBT_USER, Settings, load_settings
from smartmeter.pipeline.catch_up import catch_up
from smartmeter.pipeline.cycle import Runner
from smartmeter.pipeline.topics import recreate_topics
from smartmeter.trino_sql import query

GOAL = 0.9


def forget_labels(settings: Settings, first_day: dt.date, days: int) -> int:
    """Delete the labels that overlap the window (a day to either side); returns how many. As the
    stack's admin: no service role may delete ground truth."""
    window_start = dt.datetime.combine(first_day - dt.timedelta(days=1), dt.time(), dt.UTC)
    window_end = window_start + dt.timedelta(days=days + 2)
    conn = psycopg2.connect(**settings.postgres_connect_kwargs(role="admin"))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM fault_labels WHERE started_at < %s AND coalesce(ended_at, 'infinity') > %s",
                        (window_end, window_start))
            return cur.rowcount
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_health", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--start", help="first day of the backfill, YYYY-MM-DD (default: --days + 1 days ago)")
    args = parser.parse_args()
    first_day = (dt.date.fromisoformat(args.start) if args.start
                 else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=args.days + 1))
    settings = load_settings().as_trino(TRINO_DBT_USER)
    bench = scoped(settings)
    with LoopPaused(settings):
        print(f"== health: {args.meters:,} meters, {args.days} day(s) from {first_day}, seed {args.seed}, "
              f"fault rate {args.fault_rate}")
        provision(args.meters)
        print(f"  forgot {forget_labels(settings, first_day, args.days)} label(s) of an earlier run")
        recreate_topics(settings, [TELEMETRY_TOPIC, FAULT_LOG_TOPIC, ALERTS_TOPIC], timeout_s=120)
        reset_scope(bench)
        started = time.monotonic()
        output = simulator("--backfill-days", str(args.days), "--start", first_day.isoformat(), "--devices",
                           str(args.meters), "--seed", str(args.seed), "--fault-rate", str(args.fault_rate), "--quiet")
        print("  " + next(line.strip() for line in output.splitlines() if "Fault labels" in line))
        catch_up(bench, progress=lambda line: print(f"  {line}", flush=True), capture=True)
        Runner(bench, "manual", progress=lambda _: None).dbt(["run", "--select", "health_score_evaluation"])
        print(f"  loaded and scored in {time.monotonic() - started:.0f}s")
        header, rows = query(bench, f"select * from iceberg.{bench.schema('marts')}.health_score_evaluation "
                                    "order by fault_type = 'ALL' desc, positive_status_rule, fault_type")
        widths = [max(len(str(h)), 10) for h in header]
        print("  " + " | ".join(f"{h:<{w}}" for h, w in zip(header, widths, strict=True)))
        for row in rows:
            cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
            print("  " + " | ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)))
        per_type = [row for row in rows if row[1] != "ALL"]
        worst_precision = min(row[6] if row[6] is not None else 0.0 for row in per_type)
        worst_recall = min(row[7] if row[7] is not None else 0.0 for row in per_type)
        print(f"RESULT health meters={args.meters} days={args.days} seed={args.seed} fault_types={len(per_type)} "
              f"min_precision={worst_precision:.3f} min_recall={worst_recall:.3f} (goal >= {GOAL} for every type, "
              f"ratios {worst_precision / GOAL:.2f} and {worst_recall / GOAL:.2f})")


if __name__ == "__main__":
    main()
