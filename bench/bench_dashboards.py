"""Dashboard render times and Superset's memory, in a real browser (Debian's chromium).

For each dashboard: the time from opening it until every chart has drawn, cold (Superset's chart
cache emptied first, so every chart queries Trino) and warm (cached), the median of --runs each,
and its slowest chart requests; then Superset's memory (gunicorn and its workers) idle and at its
peak while the three dashboards render cold. Prints results; asserts nothing.

    .lakehouse/venv/bin/python -m bench.bench_dashboards [--runs 3]

Run it on the data set to judge: the goal (issue 11) is <= 3 s a dashboard at 100,000 meters.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

from bench.bench_stack import _children
from smartmeter import dashboards as provisioning
from smartmeter.config import load_settings
from smartmeter.native.layout import Layout
from smartmeter.native.supervisor import Supervisor
from smartmeter.trino_sql import query
from tests.helpers.dashboards import browser, dashboards, login, open_dashboard

GOAL_S = 3.0
SLUGS = ("customer-usage", "meter-health", "pipeline")


def _tree(root: int) -> list[int]:
    tree, pids, stack = _children(), [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack += tree.get(pid, [])
    return pids


def memory_mb(root: int) -> tuple[float, float]:
    """(RSS, PSS) of a process tree in MB; PSS splits pages the workers share."""
    rss = pss = 0
    for pid in _tree(root):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def _empty(cache: Path) -> None:
    """Drop every cached chart result; the directory stays (the workers' cache writes need it)."""
    for entry in cache.iterdir() if cache.is_dir() else ():
        entry.unlink(missing_ok=True)


def data_size(settings) -> str:
    meters, days, meter_days = query(
        settings, "select count(distinct device_id), count(distinct reading_date), count(*) from iceberg.marts.device_health")[1][0]
    hourly = query(settings, "select count(*) from iceberg.marts.customer_usage_hourly")[1][0][0]
    return f"{meters:,} meters, {days} local days ({meter_days:,} meter-days, {hourly:,} customer-hours)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="renders per dashboard and mode (median reported)")
    args = parser.parse_args()
    settings = load_settings()
    layout = Layout(settings.home)
    info = Supervisor(layout).info("superset")
    if info is None or info.state != "RUNNING" or not provisioning.healthy(settings):
        print("Superset is not running: ./lakehouse up", file=sys.stderr)
        return 1
    cache = layout.superset_home / "cache"
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; Superset {settings.superset_workers} workers; "
          f"data: {data_size(settings)}")
    peak = {"rss": 0.0, "pss": 0.0}
    sampling = threading.Event()

    def sample() -> None:
        while sampling.is_set():
            rss, pss = memory_mb(info.pid)
            peak["rss"], peak["pss"] = max(peak["rss"], rss), max(peak["pss"], pss)
            time.sleep(0.2)

    with browser() as chromium:
        page = login(chromium, settings)
        boards = dashboards(page, settings)
        for slug in SLUGS:  # a first load warms gunicorn's workers and the browser's asset cache
            open_dashboard(page, settings, boards[slug])
        idle_rss, idle_pss = memory_mb(info.pid)
        print(f"\n{'dashboard':<16}{'charts':>7}{'cold s':>9}{'warm s':>9}   goal <= {GOAL_S:.0f}s   slowest chart requests (cold)")
        sampling.set()
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            for slug in SLUGS:
                cold, warm, slowest = [], [], []
                for _ in range(args.runs):
                    _empty(cache)
                    rendered = open_dashboard(page, settings, boards[slug])
                    cold.append(rendered.seconds)
                    slowest = sorted(((d.seconds, boards[slug].charts[c]) for c, d in rendered.data.items()), reverse=True)[:2]
                    warm.append(open_dashboard(page, settings, boards[slug]).seconds)
                median_cold = statistics.median(cold)
                verdict = "ok" if median_cold <= GOAL_S else "over"
                print(f"{slug:<16}{len(boards[slug].charts):>7}{median_cold:>9.2f}{statistics.median(warm):>9.2f}   {verdict:<13}"
                      + ", ".join(f"{name} {seconds:.2f}s" for seconds, name in slowest))
        finally:
            sampling.clear()
            sampler.join()
    print(f"\nSuperset memory (gunicorn + {settings.superset_workers} workers): idle RSS {idle_rss:.0f} MB (PSS {idle_pss:.0f} MB), "
          f"peak while rendering RSS {peak['rss']:.0f} MB (PSS {peak['pss']:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
