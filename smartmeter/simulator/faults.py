"""Fault injection plan and ground truth.

A share of meters (`fault_rate`) gets one fault episode each, at a random time in the simulated
window. The fleet applies the episode's effect to the readings and emits the matching fault-log
events; the episode itself is the ground truth label (device, fault type, start, end) that
health rules are scored against.

Effects while an episode is active (see `Fleet`):
- BATTERY_FAILURE: battery drains within hours to 0-4 %, status WARNING then ERROR, B101/B102.
  At the end the battery is replaced (100 %, I001).
- VOLTAGE_INSTABILITY: frequent sags and swells outside EN 50160, status WARNING/ERROR, V201/V202.
- COMM_DROPOUT: no readings at all (the register keeps counting), C301 at the start and C302
  at the end.
- REGISTER_STUCK: energy 0 and the register frozen, status ERROR, R401.
- CLOCK_DRIFT: timestamps drift away from the interval grid, status WARNING past 60 s, T501;
  resynchronised at the end.
- TAMPER: cover opened (X601), status WARNING, energy partly bypassing the meter; cover closed at
  the end (I002).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

from smartmeter.simulator.model import Device, FaultEpisode, format_timestamp

HOUR_S = 3600

# fault type -> (share among faulty meters, shortest and longest duration in seconds)
FAULT_TYPES: dict[str, tuple[float, int, int]] = {
    "BATTERY_FAILURE": (0.15, 24 * HOUR_S, 96 * HOUR_S),
    "VOLTAGE_INSTABILITY": (0.20, 2 * HOUR_S, 36 * HOUR_S),
    "COMM_DROPOUT": (0.20, 1 * HOUR_S, 12 * HOUR_S),
    "REGISTER_STUCK": (0.15, 6 * HOUR_S, 48 * HOUR_S),
    "CLOCK_DRIFT": (0.15, 24 * HOUR_S, 96 * HOUR_S),
    "TAMPER": (0.15, HOUR_S // 4, 6 * HOUR_S),
}


def plan_faults(
    devices: Sequence[Device],
    *,
    fault_rate: float,
    window_start_at: int,
    window_end_at: int,
    interval_s: int,
    rng: random.Random,
    duration_scale: float = 1.0,
) -> list[FaultEpisode]:
    """Episodes for round(fault_rate * len(devices)) meters, starting on interval boundaries.

    `duration_scale` shrinks durations for live mode, where one round stands for one interval.
    """
    if fault_rate <= 0 or not devices or window_end_at <= window_start_at:
        return []
    faulty = rng.sample(range(len(devices)), min(len(devices), round(fault_rate * len(devices))))
    types = list(FAULT_TYPES)
    weights = [FAULT_TYPES[name][0] for name in types]
    intervals = max(1, (window_end_at - window_start_at) // interval_s)
    episodes = []
    for index in sorted(faulty):
        fault_type = rng.choices(types, weights)[0]
        _, shortest_s, longest_s = FAULT_TYPES[fault_type]
        duration_s = max(interval_s, round(rng.randint(shortest_s, longest_s) * duration_scale))
        duration_s -= duration_s % interval_s
        started_at = window_start_at + rng.randrange(intervals) * interval_s
        episodes.append(
            FaultEpisode(devices[index].device_id, fault_type, started_at, started_at + duration_s)
        )
    return episodes


def observed_labels(episodes: Iterable[FaultEpisode], last_at: int | None) -> list[tuple]:
    """Labels for what the stream actually showed up to `last_at`: episodes not yet started are
    left out, and those still running have no end (None)."""
    if last_at is None:
        return []
    return [
        (episode.device_id, episode.fault_type, episode.started_at,
         episode.ended_at if episode.ended_at <= last_at else None)
        for episode in episodes
        if episode.started_at <= last_at
    ]


def write_labels_csv(path: Path, labels: Sequence[tuple]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["device_id", "fault_type", "started_at", "ended_at"])
        for device_id, fault_type, started_at, ended_at in labels:
            writer.writerow([
                device_id,
                fault_type,
                format_timestamp(started_at),
                "" if ended_at is None else format_timestamp(ended_at),
            ])
