"""The simulated fleet: turns devices, load profiles and fault episodes into readings.

`Fleet.step(interval_end_at)` returns one `IntervalBatch` per call. Healthy meters take a short
path (a few list lookups and one random draw); meters with an active fault episode take a slower
path that applies the fault. Every meter draws the same random numbers whether it is faulty or
not, so a fault never changes another meter's readings, and the same seed gives the same output.

Load shapes are read on each meter's local clock: its customer's zone, or the utility's. Per
interval the fleet looks up one relative power per (zone, segment); the per-reading work is the
same however many zones there are. With a `BackfillWindow`, a zone's meters report only for
intervals that end inside its zone's window, so a backfill gives every zone whole local days.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from smartmeter import calendar
from smartmeter.simulator import profiles
from smartmeter.simulator.faultlogs import FIELD_NOTES, NOTE_EVENT_TYPE
from smartmeter.simulator.model import (
    SEGMENTS,
    VOLTAGE_OK_MAX_DV,
    VOLTAGE_OK_MIN_DV,
    VOLTAGE_WARN_MAX_DV,
    VOLTAGE_WARN_MIN_DV,
    Device,
    FaultEpisode,
    FaultEvent,
    IntervalBatch,
    Reading,
    epoch_of_date,
    format_timestamp,
    status_for,
)

DAY_S = profiles.DAY_S
_TABLE_BITS = 12
_TABLE_MASK = (1 << _TABLE_BITS) - 1
_HEALTHY_BATTERY_FLOOR_PCT = 25
_CLOCK_DRIFT_WARNING_S = 60
_CLOCK_DRIFT_CAP_S = 14 * 60
_CLOCK_DRIFT_REPORT_EVERY_S = 6 * 3600
_TAMPER_METERED_SHARE = 0.35
_UNSTABLE_VOLTAGE_SHARE = 0.4
# Daily background log events per meter: (cumulative probability, code).
_DAILY_EVENTS = ((0.002, NOTE_EVENT_TYPE), (0.007, "I001"), (0.307, "I002"))
_SEVERITY_STATUS_RANK = {"OK": 0, "WARNING": 1, "ERROR": 2}


def _voltage_noise_table(rng: random.Random) -> list[int]:
    """Gaussian noise (σ 2.5 V) with a thin tail of sags and swells outside EN 50160."""
    table = [round(rng.gauss(0, 25)) for _ in range(1 << _TABLE_BITS)]
    for position in rng.sample(range(len(table)), 4):
        table[position] = rng.choice((-1, 1)) * rng.randint(260, 330)
    return table


def fleet_zones(devices: Sequence[Device], utility_zone: str) -> list[str]:
    """The zones of a fleet's meters: the utility's first, then the customers' own, by name."""
    own = {device.timezone for device in devices if device.timezone and device.timezone != utility_zone}
    return [utility_zone, *sorted(own)]


@dataclass(frozen=True)
class BackfillWindow:
    """Whole local days in every zone: zone -> (start_at, end_at), readings in (start_at, end_at]."""

    zone_windows: dict[str, tuple[int, int]]

    @classmethod
    def local_days(cls, zones: Sequence[str], first_day: date, days: int) -> BackfillWindow:
        return cls({zone: calendar.local_days_window(zone, first_day, days) for zone in zones})

    @property
    def start_at(self) -> int:
        return min(start_at for start_at, _ in self.zone_windows.values())

    @property
    def end_at(self) -> int:
        return max(end_at for _, end_at in self.zone_windows.values())


def _worse(status: str, other: str) -> str:
    return status if _SEVERITY_STATUS_RANK[status] >= _SEVERITY_STATUS_RANK[other] else other


class Fleet:
    def __init__(
        self,
        devices: Sequence[Device],
        *,
        seed: int,
        interval_minutes: int,
        start_at: int,
        timezone: str,
        episodes: Sequence[FaultEpisode] = (),
        background_events: bool = True,
        window: BackfillWindow | None = None,
    ) -> None:
        self.devices = list(devices)
        self.interval_minutes = interval_minutes
        self.interval_s = interval_minutes * 60
        self.zones = fleet_zones(self.devices, timezone)
        self._zone_profiles = [profiles.ZoneProfiles(zone) for zone in self.zones]
        self._zone_windows = None if window is None else [window.zone_windows[zone] for zone in self.zones]
        # Relative power is sampled once per quarter-hour the interval spans, oldest first.
        samples = max(1, math.ceil(self.interval_s / profiles.QUARTER_S))
        self._sample_offsets_s = [self.interval_s * (2 * k + 1) // (2 * samples) for k in reversed(range(samples))]
        self._index_of = {device.device_id: index for index, device in enumerate(self.devices)}
        self._readings_rng = random.Random(f"{seed}:readings")
        self._fault_rng = random.Random(f"{seed}:faults")
        self._background_rng = random.Random(f"{seed}:background") if background_events else None

        tables_rng = random.Random(f"{seed}:tables")
        noise = {seg: profiles.noise_table(seg, tables_rng, 1 << _TABLE_BITS) for seg in SEGMENTS}
        self._voltage_noise_dv = _voltage_noise_table(tables_rng)

        start_day = start_at // DAY_S
        zone_number = {zone: number for number, zone in enumerate(self.zones)}
        self._zone_of = [zone_number[device.timezone or timezone] for device in self.devices]
        # One profile key per (zone, segment): the index of its relative power in each interval.
        self._profile_key_of = [
            zone * len(SEGMENTS) + SEGMENTS.index(device.segment)
            for zone, device in zip(self._zone_of, self.devices, strict=True)
        ]
        self._noise_of = [noise[device.segment] for device in self.devices]
        self._mean_interval_wh: list[float] = []
        self._voltage_base_dv: list[int] = []
        self._battery_full_day: list[int] = []
        self._battery_drain_pct_per_day: list[float] = []
        self._drift_s_per_hour: list[float] = []
        self.register_wh: list[int] = []
        for device in self.devices:
            rng = random.Random(f"{seed}:{device.device_id}")
            if device.segment == "residential":
                # The household's energy, drawn once per customer, split across its meters.
                household_kwh = profiles.draw_annual_kwh(device.segment, random.Random(f"{seed}:{device.customer_id}"))
                annual_kwh = household_kwh / max(1, device.customer_meter_count)
            else:
                annual_kwh = profiles.draw_annual_kwh(device.segment, rng)
            daily_kwh = annual_kwh / 365
            self._mean_interval_wh.append(daily_kwh * 1000 * self.interval_s / DAY_S)
            self._voltage_base_dv.append(round(2300 + rng.gauss(0, 30)))
            installed_day = epoch_of_date(device.install_date) // DAY_S
            self._battery_full_day.append(installed_day)
            self._battery_drain_pct_per_day.append(rng.uniform(0.008, 0.02))
            self._drift_s_per_hour.append(rng.choice((-1, 1)) * rng.uniform(10, 40))
            age_days = max(0, start_day - installed_day)
            self.register_wh.append(round(age_days * daily_kwh * 1000 * rng.uniform(0.85, 1.0)))

        self._pending = sorted(episodes, key=lambda episode: (episode.started_at, episode.device_id))
        self._next_pending = 0
        self._active: list[FaultEpisode | None] = [None] * len(self.devices)
        self._running: list[int] = []
        self._fault_state: dict[int, dict] = {}

        self._day = -1
        self._battery_pct: list[int] = []
        self._day_events: list[tuple[int, int, str]] = []
        self._previous_end_at: int | None = None
        self._window_start_at = start_at

    def device(self, index: int) -> Device:
        return self.devices[index]

    # -- per day -------------------------------------------------------------------------------

    def _start_day(self, day: int) -> None:
        self._day = day
        self._battery_pct = [
            max(_HEALTHY_BATTERY_FLOOR_PCT, 100 - int(drain * max(0, day - full_day)))
            for full_day, drain in zip(self._battery_full_day, self._battery_drain_pct_per_day, strict=True)
        ]
        self._day_events = []
        rng = self._background_rng
        if rng is None:
            return
        day_start_at = day * DAY_S
        for index in range(len(self.devices)):
            draw = rng.random()
            for threshold, code in _DAILY_EVENTS:
                if draw < threshold:
                    self._day_events.append((day_start_at + 1 + rng.randrange(DAY_S), index, code))
                    break
        self._day_events.sort()

    def _background(self, after_at: int, until_at: int, zones_inside: list[bool] | None) -> list[FaultEvent]:
        day_events = self._day_events
        first = bisect.bisect_right(day_events, after_at, key=lambda event: event[0])
        last = bisect.bisect_right(day_events, until_at, key=lambda event: event[0])
        events = []
        for event_at, index, code in day_events[first:last]:
            if zones_inside is not None and not zones_inside[self._zone_of[index]]:
                continue
            device_id = self.devices[index].device_id
            if code == NOTE_EVENT_TYPE:
                note = FIELD_NOTES[event_at % len(FIELD_NOTES)]
                events.append(FaultEvent(device_id, event_at, code, "INFO", note))
            elif code == "I001":
                events.append(FaultEvent(device_id, event_at, code, "INFO", "Watchdog reboot, firmware restarted"))
            else:
                events.append(FaultEvent(device_id, event_at, code, "INFO", "Daily self test passed"))
        return events

    # -- fault episodes ------------------------------------------------------------------------

    def _event_at(self, after_at: int, until_at: int) -> int:
        return until_at - self._fault_rng.randrange(max(1, until_at - after_at))

    def _update_episodes(self, after_at: int, until_at: int, events: list[FaultEvent]) -> None:
        still_running = []
        for index in self._running:
            episode = self._active[index]
            if episode.ended_at < until_at:
                self._end_episode(index, episode, self._event_at(max(after_at, episode.ended_at), until_at), events)
                self._active[index] = None
            else:
                still_running.append(index)
        self._running = still_running
        while (
            self._next_pending < len(self._pending)
            and self._pending[self._next_pending].started_at < until_at
        ):
            episode = self._pending[self._next_pending]
            self._next_pending += 1
            index = self._index_of.get(episode.device_id)
            if index is None or episode.ended_at < until_at:
                continue
            self._active[index] = episode
            self._running.append(index)
            self._begin_episode(index, episode, self._event_at(max(after_at, episode.started_at), until_at), events)

    def _begin_episode(self, index: int, episode: FaultEpisode, event_at: int, events: list) -> None:
        device_id = episode.device_id
        state: dict = {}
        self._fault_state[index] = state
        kind = episode.fault_type
        if kind == "BATTERY_FAILURE":
            state["start_pct"] = self._battery_pct[index]
            state["floor_pct"] = self._fault_rng.randint(0, 4)
            state["hours_to_empty"] = self._fault_rng.uniform(4, 16)
            state["reported"] = set()
        elif kind == "COMM_DROPOUT":
            events.append(FaultEvent(device_id, event_at, "C301", "ERROR", "Head-end link lost, buffering readings"))
        elif kind == "REGISTER_STUCK":
            events.append(FaultEvent(device_id, event_at, "R401", "ERROR", "Register not advancing, metrology check failed"))
        elif kind == "TAMPER":
            events.append(FaultEvent(device_id, event_at, "X601", "CRITICAL", "Meter cover opened"))
        elif kind == "CLOCK_DRIFT":
            state["last_report_at"] = None

    def _end_episode(self, index: int, episode: FaultEpisode, event_at: int, events: list) -> None:
        device_id = episode.device_id
        kind = episode.fault_type
        state = self._fault_state.pop(index, {})
        if kind == "BATTERY_FAILURE":
            self._battery_full_day[index] = self._day
            self._battery_pct[index] = 100
            events.append(FaultEvent(device_id, event_at, "I001", "INFO", "Battery replaced, meter restarted"))
        elif kind == "COMM_DROPOUT":
            events.append(FaultEvent(device_id, event_at, "C302", "INFO", "Head-end link restored"))
        elif kind == "TAMPER":
            events.append(FaultEvent(device_id, event_at, "I002", "INFO", "Self test passed, cover closed"))
        elif kind == "CLOCK_DRIFT":
            drift_s = state.get("drift_s", 0)
            events.append(FaultEvent(device_id, event_at, "T501", "INFO", f"Clock resynchronised, {drift_s} s corrected"))

    def _drained_battery(self, index: int, episode: FaultEpisode, reading_at: int, events: list[FaultEvent]) -> int:
        state = self._fault_state[index]
        hours = (reading_at - episode.started_at) / 3600
        drained = state["start_pct"] * hours / state["hours_to_empty"]
        battery_pct = max(state["floor_pct"], int(state["start_pct"] - drained))
        self._battery_pct[index] = battery_pct
        for limit, code, severity, text in (
            (20, "B101", "WARNING", f"Battery at {battery_pct} percent"),
            (5, "B102", "ERROR", f"Battery failure, {battery_pct} percent, replace battery"),
        ):
            if battery_pct < limit and code not in state["reported"]:
                state["reported"].add(code)
                events.append(FaultEvent(episode.device_id, self._event_at(self._window_start_at, reading_at), code,
                                         severity, text))
        return battery_pct

    def _unstable_voltage(self, device_id: str, voltage_dv: int, reading_at: int, events: list[FaultEvent]) -> int:
        rng = self._fault_rng
        if rng.random() >= _UNSTABLE_VOLTAGE_SHARE:
            return voltage_dv
        if rng.random() < 0.6:
            voltage_dv = rng.randint(1780, VOLTAGE_OK_MIN_DV - 1)
            code, text = "V201", f"Voltage {voltage_dv / 10} V below limit"
        else:
            voltage_dv = rng.randint(VOLTAGE_OK_MAX_DV + 1, 2700)
            code, text = "V202", f"Voltage {voltage_dv / 10} V above limit"
        severity = "WARNING" if VOLTAGE_WARN_MIN_DV <= voltage_dv <= VOLTAGE_WARN_MAX_DV else "ERROR"
        events.append(FaultEvent(device_id, self._event_at(self._window_start_at, reading_at), code, severity, text))
        return voltage_dv

    def _clock_drift(self, index: int, episode: FaultEpisode, reading_at: int, events: list[FaultEvent]) -> int:
        """Seconds the meter's clock is off now; reports it (T501) at most every few hours."""
        state = self._fault_state[index]
        hours = (reading_at - episode.started_at) / 3600
        drift_s = round(self._drift_s_per_hour[index] * hours)
        drift_s = max(-_CLOCK_DRIFT_CAP_S, min(_CLOCK_DRIFT_CAP_S, drift_s))
        state["drift_s"] = drift_s
        if abs(drift_s) > _CLOCK_DRIFT_WARNING_S:
            last = state["last_report_at"]
            if last is None or reading_at - last >= _CLOCK_DRIFT_REPORT_EVERY_S:
                state["last_report_at"] = reading_at
                events.append(FaultEvent(episode.device_id, reading_at, "T501", "WARNING", f"Clock drift {drift_s} s detected"))
        return drift_s

    def _faulty_row(
        self, index: int, episode: FaultEpisode, reading_at: int, timestamp: str,
        energy_wh: int, voltage_dv: int, events: list[FaultEvent],
    ) -> tuple | None:
        """The reading of a meter with an active episode, or None when it sends nothing."""
        device_id = episode.device_id
        kind = episode.fault_type
        battery_pct = self._battery_pct[index]
        status_floor = "OK"
        if kind == "COMM_DROPOUT":
            self.register_wh[index] += energy_wh
            return None
        if kind == "REGISTER_STUCK":
            energy_wh = 0
            status_floor = "ERROR"
        elif kind == "TAMPER":
            energy_wh = int(energy_wh * _TAMPER_METERED_SHARE)
            status_floor = "WARNING"
        elif kind == "BATTERY_FAILURE":
            battery_pct = self._drained_battery(index, episode, reading_at, events)
        elif kind == "VOLTAGE_INSTABILITY":
            voltage_dv = self._unstable_voltage(device_id, voltage_dv, reading_at, events)
        elif kind == "CLOCK_DRIFT":
            drift_s = self._clock_drift(index, episode, reading_at, events)
            if abs(drift_s) > _CLOCK_DRIFT_WARNING_S:
                status_floor = "WARNING"
            timestamp = format_timestamp(reading_at + drift_s)
            reading_at += drift_s
        register_wh = self.register_wh[index] + energy_wh
        self.register_wh[index] = register_wh
        status = _worse(status_for(voltage_dv, battery_pct), status_floor)
        return (index, reading_at, timestamp, energy_wh, voltage_dv, battery_pct, register_wh, status)

    # -- the hot path --------------------------------------------------------------------------

    def step(self, interval_end_at: int) -> IntervalBatch:
        """All readings for the interval ending at `interval_end_at` (UTC epoch seconds)."""
        previous_end_at = self._previous_end_at
        if previous_end_at is None:
            previous_end_at = interval_end_at - self.interval_s
        self._previous_end_at = interval_end_at
        self._window_start_at = previous_end_at
        # Battery and background events follow the meter's own UTC days; the reading at 00:00
        # closes the previous day's last interval, so it belongs to that day.
        day = (interval_end_at - 1) // DAY_S
        if day != self._day:
            self._start_day(day)
        zones_inside = self._zones_inside(interval_end_at)
        events = self._background(previous_end_at, interval_end_at, zones_inside) if self._day_events else []
        if self._next_pending < len(self._pending) or self._running:
            self._update_episodes(previous_end_at, interval_end_at, events)

        factor, voltage_offset_dv = self._relative_power(interval_end_at)
        timestamp = format_timestamp(interval_end_at)

        rows: list = []
        append = rows.append
        draw = self._readings_rng.getrandbits
        mean_wh = self._mean_interval_wh
        profile_key_of = self._profile_key_of
        noise_of = self._noise_of
        voltage_base = self._voltage_base_dv
        voltage_noise = self._voltage_noise_dv
        battery = self._battery_pct
        register = self.register_wh
        active = self._active
        bits = _TABLE_BITS
        mask = _TABLE_MASK
        reporting = range(len(mean_wh))
        if zones_inside is not None:
            zone_of = self._zone_of
            reporting = [index for index in reporting if zones_inside[zone_of[index]]]
        for index in reporting:
            key = profile_key_of[index]
            random_bits = draw(2 * bits)
            energy_wh = int(mean_wh[index] * factor[key] * noise_of[index][random_bits & mask] + 0.5)
            voltage_dv = voltage_base[index] + voltage_offset_dv[key] + voltage_noise[random_bits >> bits]
            episode = active[index]
            if episode is not None:
                row = self._faulty_row(index, episode, interval_end_at, timestamp, energy_wh, voltage_dv, events)
                if row is not None:
                    append(row)
                continue
            register_wh = register[index] + energy_wh
            register[index] = register_wh
            if VOLTAGE_OK_MIN_DV <= voltage_dv <= VOLTAGE_OK_MAX_DV:
                status = "OK"
            elif VOLTAGE_WARN_MIN_DV <= voltage_dv <= VOLTAGE_WARN_MAX_DV:
                status = "WARNING"
            else:
                status = "ERROR"
            append((index, interval_end_at, timestamp, energy_wh, voltage_dv, battery[index], register_wh, status))
        events.sort(key=lambda event: event.event_at)
        return IntervalBatch(interval_end_at, rows, events)

    def _relative_power(self, interval_end_at: int) -> tuple[list[float], list[int]]:
        """Relative power and voltage offset of each profile key over the interval."""
        factor: list[float] = []
        voltage_offset_dv: list[int] = []
        midpoint_at = interval_end_at - self.interval_s // 2
        for zone in self._zone_profiles:
            samples = [zone.factors(interval_end_at - offset_s) for offset_s in self._sample_offsets_s]
            offset_dv = zone.voltage_offset_dv(midpoint_at)
            for segment_number in range(len(SEGMENTS)):
                factor.append(sum(sample[segment_number] for sample in samples) / len(samples))
                voltage_offset_dv.append(offset_dv)
        return factor, voltage_offset_dv

    def _zones_inside(self, interval_end_at: int) -> list[bool] | None:
        """Per zone, whether its window holds the interval; None when every zone's does."""
        if self._zone_windows is None:
            return None
        inside = [start_at < interval_end_at <= end_at for start_at, end_at in self._zone_windows]
        return None if all(inside) else inside

    def readings(self, batch: IntervalBatch) -> list[Reading]:
        """The batch as `Reading` objects, for display and tests (slow; not for backfill)."""
        result = []
        for index, reading_at, _, energy_wh, voltage_dv, battery_pct, register_wh, status in batch.rows:
            device = self.devices[index]
            result.append(Reading(
                device.device_id, device.customer_id, reading_at, energy_wh, voltage_dv,
                battery_pct, register_wh, status, self.interval_minutes,
            ))
        return result

