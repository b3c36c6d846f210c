"""Native stack benchmark: cold setup, warm `up`, and memory per service idle and under a query.

Prints results; asserts nothing about timings. Cold setup wipes the stack's data, so it only runs
with --cold.

    .lakehouse/venv/bin/python -m bench.bench_stack [--cold]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from smartmeter.config import REPO_ROOT, load_settings
from smartmeter.native import process
from smartmeter.native.layout import Layout
from smartmeter.trino_sql import query

GOAL_WARM_UP_S = 60
GOAL_TOTAL_GB = 6.0
HEAVY_QUERY = (
    "SELECT count(DISTINCT h), max(length(h)) FROM ("
    " SELECT to_hex(sha256(to_utf8(cast(a * 10000 + b AS varchar)))) AS h"
    " FROM unnest(sequence(1, 300)) t(a) CROSS JOIN unnest(sequence(1, 10000)) u(b))"
)


def _timed(*args: str) -> float:
    started = time.monotonic()
    subprocess.run([str(REPO_ROOT / args[0]), *args[1:]], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _pss_mb(root: int, tree: dict[int, list[int]]) -> float:
    """Proportional set size of a process tree: shared pages are split, not double-counted."""
    total_kb, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack += tree.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def memory_by_service(layout: Layout) -> dict[str, float]:
    tree = _children()
    usage = {}
    for pid_file in sorted(layout.run.glob("*.pid")):
        pid = process.read_pid(pid_file)
        if pid is not None:
            usage[pid_file.stem] = _pss_mb(pid, tree)
    return usage


def peak_memory_during(layout: Layout, work) -> dict[str, float]:
    peak: dict[str, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for name, mb in memory_by_service(layout).items():
                peak[name] = max(peak.get(name, 0.0), mb)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="also time ./initial-setup.sh --native (wipes all data)")
    args = parser.parse_args()
    settings = load_settings()
    layout = Layout(settings.home)
    print(f"machine: {os.cpu_count()} cores; state in {layout.home}")
    if args.cold:
        print(f"cold setup (downloads cached): {_timed('initial-setup.sh', '--native'):.1f}s")
    _timed("lakehouse", "down")
    warm = _timed("lakehouse", "up")
    print(f"warm up to healthy:            {warm:.1f}s (goal < {GOAL_WARM_UP_S}s, ratio {warm / GOAL_WARM_UP_S:.2f})")
    time.sleep(5)
    idle = memory_by_service(layout)
    busy = peak_memory_during(layout, lambda: query(settings, HEAVY_QUERY))
    print(f"\n{'service':<16}{'idle MB':>10}{'peak MB under query':>22}")
    for name in sorted(idle):
        print(f"{name:<16}{idle[name]:>10.0f}{busy.get(name, 0):>22.0f}")
    total_idle, total_busy = sum(idle.values()) / 1024, sum(busy.values()) / 1024
    print(f"{'total (GB)':<16}{total_idle:>10.2f}{total_busy:>22.2f}   goal < {GOAL_TOTAL_GB} GB "
          f"(ratio {total_busy / GOAL_TOTAL_GB:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
