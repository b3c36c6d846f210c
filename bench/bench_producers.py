"""Backfill throughput into Kafka with each client, side by side in one run.

    python bench/bench_producers.py [--devices 2000] [--days 1] [--clients confluent,kafka-python]

Each client runs in its own process (so peak RSS is its own) through the simulator's real
backfill path: synthetic fleet (no PostgreSQL needed), acks=all, idempotence, flush at the end.
A 'generate-only' row shows the ceiling of the Python side without Kafka. Topics are created
with a unique suffix and deleted afterwards. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartmeter.calendar import local_days_window
from smartmeter.config import load_settings
from smartmeter.simulator.chaos import ChaosRates, TelemetryChaos
from smartmeter.simulator.fleet import Fleet
from smartmeter.simulator.masterdata import synthetic_fleet
from smartmeter.simulator.producer import ProducerOptions, ProducerStats, create_producer
from smartmeter.simulator.runner import Simulation

START_DAY = date(2025, 12, 1)


class NullProducer:
    def __init__(self) -> None:
        self.stats = ProducerStats()

    def send_many(self, topic, messages) -> None:
        for key, value in messages:
            self.stats.produced += 1
            self.stats.produced_bytes += len(key) + len(value)

    def flush(self, timeout_s: float) -> int:
        return 0

    def close(self) -> None:
        pass


def worker(client: str, devices: int, days: int, topic: str, log_topic: str, bootstrap: str) -> dict:
    _, fleet_devices = synthetic_fleet(max(1, devices // 2), devices)
    timezone = load_settings().timezone
    start_at, end_at = local_days_window(timezone, START_DAY, days)
    intervals = (end_at - start_at) // 900
    fleet = Fleet(fleet_devices, seed=1, interval_minutes=15, start_at=start_at, timezone=timezone)
    chaos = TelemetryChaos(ChaosRates(), seed=1, known_device_ids=(), window_end_at=start_at)
    producer = NullProducer() if client == "generate-only" else create_producer(
        client, ProducerOptions(bootstrap_servers=bootstrap))
    simulation = Simulation(fleet, producer, topic=topic, log_topic=log_topic, chaos=chaos)
    started = time.perf_counter()
    simulation.backfill(start_at, intervals, max_readings=None)
    producer.flush(300)
    elapsed_s = time.perf_counter() - started
    producer.close()
    return {
        "client": client,
        "messages": producer.stats.produced,
        "megabytes": producer.stats.produced_bytes / 1e6,
        "seconds": elapsed_s,
        "failed": producer.stats.failed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _admin(bootstrap: str):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--clients", default="generate-only,confluent,kafka-python")
    parser.add_argument("--bootstrap-servers", default=load_settings().kafka_bootstrap_servers)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.devices, args.days, args.topic, f"{args.topic}_logs",
                                args.bootstrap_servers)))
        return 0

    from confluent_kafka.admin import NewTopic

    suffix = uuid.uuid4().hex[:8]
    admin = _admin(args.bootstrap_servers)
    results = []
    print(f"Backfill of {args.devices:,} synthetic meters x {args.days} day(s) x 96 intervals "
          f"into {args.bootstrap_servers} (acks=all, idempotent)")
    for client in args.clients.split(","):
        topic = f"bench_telemetry_{client.replace('-', '_')}_{suffix}"
        topics = [topic, f"{topic}_logs"]
        if client != "generate-only":
            for future in admin.create_topics([NewTopic(name, 3, 1) for name in topics]).values():
                future.result()
        try:
            output = subprocess.run(
                [sys.executable, __file__, "--worker", client, "--topic", topic, "--devices", str(args.devices),
                 "--days", str(args.days), "--bootstrap-servers", args.bootstrap_servers],
                capture_output=True, text=True, check=True,
            ).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
        finally:
            if client != "generate-only":
                for future in admin.delete_topics(topics).values():
                    future.result()
    print(f"{'client':<15}{'messages':>12}{'seconds':>10}{'msgs/s':>12}{'MB/s':>8}{'peak RSS MB':>13}{'failed':>8}")
    for row in results:
        print(f"{row['client']:<15}{row['messages']:>12,}{row['seconds']:>10.2f}"
              f"{row['messages'] / row['seconds']:>12,.0f}{row['megabytes'] / row['seconds']:>8.1f}"
              f"{row['peak_rss_mb']:>13.0f}{row['failed']:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
