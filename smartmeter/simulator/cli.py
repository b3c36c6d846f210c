"""`python3 telemetry_simulator.py`: argument parsing and the run modes.

Every option has an environment variable (shown in --help); flags win over the environment.
Modes: live (default), --backfill-days, --ship-log, and --provision-* (which simulates
afterwards only when --backfill-days or --count is also given).
"""

from __future__ import annotations

import argparse
import math
import random
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smartmeter import calendar
from smartmeter.config import FAULT_LOG_TOPIC, TELEMETRY_TOPIC, env, load_settings
from smartmeter.errors import LakehouseError
from smartmeter.simulator import masterdata
from smartmeter.simulator.chaos import ChaosRates, TelemetryChaos
from smartmeter.simulator.faultlogs import device_id_in
from smartmeter.simulator.faults import observed_labels, plan_faults, write_labels_csv
from smartmeter.simulator.fleet import BackfillWindow, Fleet, fleet_zones
from smartmeter.simulator.producer import CLIENTS, MessageRecorder, ProducerOptions, create_producer
from smartmeter.simulator.runner import RULE, RunTotals, Simulation

BANNER = "=" * 80
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
LIVE_DEFAULT_DEVICES = 10
LIVE_DEFAULT_CUSTOMERS = 5
LIVE_FAULT_HORIZON_ROUNDS = 240
MAPPING_LINES_SHOWN = 20


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from exc


def _zone(text: str) -> str:
    try:
        calendar.country_of(text)
        ZoneInfo(text)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def _interval_minutes(text: str) -> int:
    value = _positive_int(text)
    if 1440 % value:
        raise argparse.ArgumentTypeError(f"must divide a day evenly (e.g. 5, 15, 30, 60), got {text}")
    return value


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


class _Options:
    """Adds options whose default comes from an environment variable, parsed like the flag."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        self.env_errors: list[str] = []

    def add(self, group, flag: str, env_name: str, default=None, type=str, help: str = "", **kwargs):
        raw = env(env_name)
        value = default
        if raw:
            try:
                value = type(raw)
            except (argparse.ArgumentTypeError, ValueError) as exc:
                self.env_errors.append(f"{env_name}={raw!r}: {exc}")
        shown = "" if default is None else f"; default {default}"
        group.add_argument(flag, default=value, type=type, help=f"{help} (env {env_name}{shown})", **kwargs)

    def add_switch(self, group, flag: str, env_name: str, help: str) -> None:
        group.add_argument(flag, action="store_true", default=_flag(env(env_name, "0")),
                           help=f"{help} (env {env_name}=1)")


def build_parser() -> tuple[argparse.ArgumentParser, _Options]:
    settings = load_settings()
    parser = argparse.ArgumentParser(
        prog="telemetry_simulator.py",
        description="Simulate smart energy meters: telemetry to Kafka topic telemetry_raw and "
                    "fault-log lines to meter_fault_logs, using master data from PostgreSQL.",
    )
    options = _Options(parser)
    kafka = parser.add_argument_group("Kafka")
    options.add(kafka, "--bootstrap-servers", "KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers,
                help="Kafka bootstrap servers")
    options.add(kafka, "--topic", "SIM_TOPIC", TELEMETRY_TOPIC, help="telemetry topic")
    options.add(kafka, "--fault-log-topic", "SIM_FAULT_LOG_TOPIC", FAULT_LOG_TOPIC, help="fault-log topic")
    options.add(kafka, "--kafka-client", "SIM_KAFKA_CLIENT", "confluent", choices=CLIENTS,
                help="Kafka client library")
    options.add(kafka, "--connect-retries", "SIM_CONNECT_RETRIES", 5, type=_positive_int,
                help="attempts to reach Kafka and PostgreSQL before giving up")
    options.add(kafka, "--connect-backoff", "SIM_CONNECT_BACKOFF_SECONDS", 1.0, type=_positive_float,
                help="first wait between attempts in seconds, doubled each time")
    options.add(kafka, "--connect-timeout", "SIM_CONNECT_TIMEOUT_SECONDS", 5.0, type=_positive_float,
                help="seconds each Kafka connection attempt may take")
    options.add(kafka, "--flush-timeout", "SIM_FLUSH_TIMEOUT_SECONDS", 300.0, type=_positive_float,
                help="seconds to wait for outstanding deliveries at the end")

    fleet = parser.add_argument_group("Fleet and timing")
    options.add(fleet, "--devices", "SIM_DEVICES", type=_positive_int,
                help=f"use at most N active devices (live default {LIVE_DEFAULT_DEVICES}, backfill: all)")
    options.add(fleet, "--customers", "SIM_CUSTOMERS", type=_positive_int,
                help=f"use devices of at most N customers (live default {LIVE_DEFAULT_CUSTOMERS}, backfill: all)")
    options.add(fleet, "--interval", "SIM_INTERVAL_SECONDS", 2.0, type=_positive_float,
                help="live mode: seconds between rounds; each round is one metering interval")
    options.add(fleet, "--interval-minutes", "SIM_INTERVAL_MINUTES", 15, type=_interval_minutes,
                help="metering interval: each reading's energy covers this many minutes")
    options.add(fleet, "--count", "SIM_COUNT", type=_positive_int,
                help="stop after N readings (chaos extras not counted)")
    options.add(fleet, "--seed", "SIM_SEED", type=int,
                help="random seed for reproducible output (default: random, printed)")
    options.add_switch(fleet, "--quiet", "SIM_QUIET", "live mode: no line per message")

    backfill = parser.add_argument_group("Backfill")
    options.add(backfill, "--backfill-days", "SIM_BACKFILL_DAYS", type=_positive_int,
                help="generate N days of history as fast as possible, then exit")
    options.add(backfill, "--start", "SIM_START", type=_day,
                help="first backfill day, YYYY-MM-DD, a local date in LAKEHOUSE_TIMEZONE (default: today minus N days)")

    faults = parser.add_argument_group("Faults and ground truth")
    options.add(faults, "--fault-rate", "SIM_FAULT_RATE", 0.05, type=_rate,
                help="share of meters that develop a fault")
    options.add(faults, "--fault-labels", "SIM_FAULT_LABELS", type=Path,
                help="write ground-truth fault labels to this CSV (always also to PostgreSQL fault_labels)")

    chaos = parser.add_argument_group("Chaos (rates are per reading, 0..1)")
    options.add_switch(chaos, "--chaos", "SIM_CHAOS",
                       "turn on every chaos kind at its default rate (1 %%; future clock 0.1 %%)")
    for kind in ChaosRates.kinds():
        options.add(chaos, f"--chaos-{kind.replace('_', '-')}-rate", f"SIM_CHAOS_{kind.upper()}_RATE",
                    type=_rate, help=f"rate of {kind.replace('_', ' ')} messages")

    other = parser.add_argument_group("Other modes and outputs")
    options.add(other, "--record", "SIM_RECORD", type=Path,
                help="write every produced message as a JSON line {topic, key, value}, in send order")
    options.add(other, "--ship-log", "SIM_SHIP_LOG", type=Path,
                help="send the lines of an existing .log file to the fault-log topic, then exit")
    options.add(other, "--provision-customers", "SIM_PROVISION_CUSTOMERS", type=_non_negative_int,
                help="grow master data to at least N customers (idempotent)")
    options.add(other, "--provision-devices", "SIM_PROVISION_DEVICES", type=_non_negative_int,
                help="grow master data to at least M devices (idempotent)")
    options.add(other, "--provision-second-zone", "SIM_PROVISION_SECOND_ZONE", type=_zone,
                help=f"put {masterdata.SECOND_ZONE_SHARE * 100:g} %% of newly provisioned customers in this IANA "
                     "time zone (e.g. America/New_York); the others keep the utility's zone")
    return parser, options


def chaos_rates(args: argparse.Namespace) -> ChaosRates:
    defaults = ChaosRates.defaults() if args.chaos else ChaosRates()
    chosen = {}
    for kind in ChaosRates.kinds():
        explicit = getattr(args, f"chaos_{kind}_rate")
        chosen[kind] = getattr(defaults, kind) if explicit is None else explicit
    return ChaosRates(**chosen)


def _kafka_list(servers: str) -> str:
    return str(servers.split(","))


def _postgres_address(settings) -> str:
    return f"{settings.postgres_host}:{settings.postgres_port}"


def _producer_options(args, *, report_each: bool) -> ProducerOptions:
    return ProducerOptions(
        bootstrap_servers=args.bootstrap_servers,
        connect_attempts=args.connect_retries,
        connect_backoff_s=args.connect_backoff,
        connect_timeout_s=args.connect_timeout,
        report_each=report_each,
    )


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser, options = build_parser()
    args = parser.parse_args(argv)
    if options.env_errors:
        parser.error("bad environment variable: " + "; ".join(options.env_errors))
    try:
        rates = chaos_rates(args)
        rates.validate()
    except ValueError as exc:
        parser.error(str(exc))
    if args.start is not None and args.backfill_days is None:
        parser.error("--start needs --backfill-days")
    if args.provision_second_zone is not None and args.provision_customers is None and args.provision_devices is None:
        parser.error("--provision-second-zone needs --provision-customers or --provision-devices")
    # Stop cleanly on Ctrl+C and on kill, even when started with SIGINT ignored (e.g. with `&`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        if args.ship_log is not None:
            return ship_log(args)
        if args.provision_customers is not None or args.provision_devices is not None:
            provision(args)
            if args.backfill_days is None and args.count is None:
                return 0
        return simulate(args, rates)
    except LakehouseError as exc:
        print(f"\n✗ Error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED


class SimulationError(LakehouseError):
    """A reason the simulation cannot start, printed as `✗ Error: ...`."""


def _connect_postgres(args):
    settings = load_settings()
    return masterdata.connect(settings.postgres_connect_kwargs(role="simulator"), _postgres_address(settings),
                              args.connect_retries, args.connect_backoff)


def provision(args) -> None:
    customers = args.provision_customers
    devices = args.provision_devices
    if customers is None:
        customers = max(1, devices // 2)
    if devices is None:
        devices = customers * 2
    if customers > devices:
        raise LakehouseError("--provision-customers must not exceed --provision-devices "
                             "(every customer has at least one meter)")
    print(f"Provisioning {customers:,} customers and {devices:,} devices in PostgreSQL...")
    connection = _connect_postgres(args)
    try:
        started = time.monotonic()
        new_customers, new_devices = masterdata.provision(connection, customers, devices, args.provision_second_zone)
        print(f"✓ Provisioned in {time.monotonic() - started:.1f}s: {new_customers:,} new customers, "
              f"{new_devices:,} new devices (existing rows kept)")
        _seed_calendar(connection, load_settings().timezone, [args.provision_second_zone],
                       masterdata.default_holiday_years(date.today()))
    finally:
        connection.close()


def _seed_calendar(connection, utility_zone: str, zones, years: tuple[int, int]) -> None:
    """Public holidays of every zone in use, so the marts price and type local days with them."""
    try:
        in_use = masterdata.zones_in_use(connection, utility_zone, *zones)
        written = masterdata.seed_calendar(connection, in_use, *years)
    except ValueError as exc:
        raise SimulationError(f"public holidays: {exc}") from exc
    countries = sorted({country for zone in in_use if (country := calendar.country_of(zone))})
    print(f"✓ Public holidays {years[0]}-{years[1]} in PostgreSQL: {written:,} "
          f"({', '.join(countries) or 'no country'})")


def ship_log(args) -> int:
    path: Path = args.ship_log
    if not path.is_file():
        print(f"✗ Error: log file {path} does not exist", file=sys.stderr)
        return EXIT_FAILED
    lines = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.rstrip("\r")
        if line.strip():
            device_id = device_id_in(line)
            lines.append((device_id.encode() if device_id else None, line))
    recorder = MessageRecorder(args.record) if args.record else None
    producer = create_producer(args.kafka_client, _producer_options(args, report_each=False), recorder)
    print(f"✓ Connected to Kafka at {_kafka_list(args.bootstrap_servers)}")
    try:
        producer.send_many(args.fault_log_topic, lines)
    finally:
        producer.flush(args.flush_timeout)
        producer.close()
    unkeyed = sum(1 for key, _ in lines if key is None)
    print(f"✓ Shipped {len(lines) - producer.stats.failed:,} of {len(lines):,} lines from {path} "
          f"to {args.fault_log_topic} ({unkeyed:,} without a device id, sent without a key)")
    _print_failures(producer.stats)
    return EXIT_FAILED if producer.stats.failed else 0


def _print_failures(stats) -> None:
    if stats.failed:
        print(f"✗ Delivery failures: {stats.failed:,}", file=sys.stderr)
        for sample in stats.error_samples:
            print(f"    {sample}", file=sys.stderr)


class ProgressBar:
    """A one-line progress bar on stderr (a line every few seconds when stderr is not a terminal)."""

    WIDTH = 30

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self.every_s = 0.25 if self.interactive else 5.0
        self._last = 0.0

    def __call__(self, totals: RunTotals, expected: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < self.every_s:
            return
        self._last = now
        share = min(1.0, totals.readings / expected) if expected else 1.0
        rate = totals.readings / totals.elapsed_s()
        eta_s = (expected - totals.readings) / rate if rate and share < 1 else 0
        filled = int(share * self.WIDTH)
        line = (f"  [{'#' * filled}{'-' * (self.WIDTH - filled)}] {share:6.1%}  "
                f"{totals.readings:,}/{expected:,} readings  {rate:,.0f} readings/s  ETA {eta_s:,.0f}s")
        if self.interactive:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _zone_error(zone: str, whose: str) -> str | None:
    try:
        calendar.country_of(zone)
    except ValueError as exc:
        return f"✗ Error: {whose}: {exc}"
    return None


@dataclass
class Plan:
    """When the run's readings fall, and the faults planned in that window."""

    start_at: int
    window_end_at: int
    episodes: list
    window: BackfillWindow | None = None
    intervals: int = 0
    expected_readings: int = 0
    first_day: date | None = None


def _print_header(args, backfill: bool, utility_zone: str, seed: int) -> None:
    print(BANNER)
    print("Smart Energy Meter Telemetry Simulator" + (" (backfill)" if backfill else ""))
    print(BANNER)
    print(f"Topic: {args.topic}")
    print(f"Kafka: {_kafka_list(args.bootstrap_servers)}")
    if backfill:
        print(f"Backfill: {args.backfill_days} day(s) at {args.interval_minutes}-minute intervals")
    else:
        print(f"Message Interval: {args.interval:g}s")
    print(f"Time zone: {utility_zone} (holidays: {calendar.country_of(utility_zone) or 'none'})")
    print(f"Seed: {seed}")
    print(BANNER)
    print()


def _load_fleet(args, backfill: bool, utility_zone: str) -> tuple[list, list[str]]:
    """The active devices to simulate and their zones; raises SimulationError when unusable."""
    max_devices = args.devices if args.devices or backfill else LIVE_DEFAULT_DEVICES
    max_customers = args.customers if args.customers or backfill else LIVE_DEFAULT_CUSTOMERS
    print("Loading device-customer mappings from PostgreSQL...")
    connection = _connect_postgres(args)
    try:
        devices, total_active = masterdata.load_active_devices(
            connection, max_customers=max_customers, max_devices=max_devices)
    finally:
        connection.close()
    if not devices:
        raise SimulationError("no active devices in PostgreSQL; load master data with ./initial-setup.sh "
                              "or add some with --provision-customers N --provision-devices M")
    zones = fleet_zones(devices, utility_zone)
    for zone in zones[1:]:
        error = _zone_error(zone, "customers.timezone")
        if error:
            raise SimulationError(error.removeprefix("✗ Error: "))
    limited = f" (of {total_active:,})" if len(devices) < total_active else ""
    print(f"✓ Loaded {len(devices):,} active devices from PostgreSQL{limited}")
    print(f"Devices: {len(devices):,} | Customers: {len({d.customer_id for d in devices}):,}")
    for zone in zones[1:]:
        customers = len({d.customer_id for d in devices if d.timezone == zone})
        print(f"  {customers:,} customer(s) in their own zone {zone}")
    print()
    return devices, zones


def _connect_producer(args, backfill: bool, devices: list):
    recorder = MessageRecorder(args.record) if args.record else None
    producer = create_producer(
        args.kafka_client, _producer_options(args, report_each=not backfill and not args.quiet), recorder)
    print(f"✓ Connected to Kafka at {_kafka_list(args.bootstrap_servers)}")
    for topic in (args.topic, args.fault_log_topic):
        if not producer.topic_exists(topic):
            print(f"  Warning: topic {topic!r} does not exist yet; it is created only if the broker "
                  "auto-creates topics (./initial-setup.sh creates it)", file=sys.stderr)
    print()
    print("Device-Customer Mapping:")
    for device in devices[:MAPPING_LINES_SHOWN]:
        print(f"  {device.device_id} -> {device.customer_id}")
    if len(devices) > MAPPING_LINES_SHOWN:
        print(f"  ... ({len(devices) - MAPPING_LINES_SHOWN:,} more)")
    print()
    return producer


def _plan_backfill(args, devices: list, zones: list[str], utility_zone: str, seed: int) -> Plan:
    """Whole local days in every zone: each zone's meters report from its own first midnight."""
    interval_s = args.interval_minutes * 60
    first_day = args.start or (datetime.now(ZoneInfo(utility_zone)).date() - timedelta(days=args.backfill_days))
    window = BackfillWindow.local_days(zones, first_day, args.backfill_days)
    plan = Plan(window.start_at, window.end_at, [], window, (window.end_at - window.start_at) // interval_s,
                first_day=first_day)
    plan_rng = random.Random(f"{seed}:plan")
    for zone, (zone_start_at, zone_end_at) in window.zone_windows.items():
        members = [device for device in devices if (device.timezone or utility_zone) == zone]
        plan.expected_readings += len(members) * ((zone_end_at - zone_start_at) // interval_s)
        plan.episodes += plan_faults(members, fault_rate=args.fault_rate, window_start_at=zone_start_at,
                                     window_end_at=zone_end_at, interval_s=interval_s, rng=plan_rng)
    return plan


def _plan_live(args, devices: list, seed: int) -> Plan:
    start_at = int(time.time())
    round_s = max(1, round(args.interval))
    horizon_rounds = math.ceil(args.count / len(devices)) if args.count else LIVE_FAULT_HORIZON_ROUNDS
    window_end_at = start_at + horizon_rounds * round_s
    episodes = plan_faults(devices, fault_rate=args.fault_rate, window_start_at=start_at,
                           window_end_at=window_end_at, interval_s=round_s,
                           rng=random.Random(f"{seed}:plan"), duration_scale=round_s / (args.interval_minutes * 60))
    return Plan(start_at, window_end_at, episodes)


def _plan_years(plan: Plan, utility_zone: str) -> tuple[int, int]:
    zone = ZoneInfo(utility_zone)
    if plan.window is None:  # live: it may run for weeks
        return masterdata.default_holiday_years(datetime.now(zone).date())
    first_day = datetime.fromtimestamp(plan.start_at, zone).date()
    last_day = datetime.fromtimestamp(plan.window_end_at, zone).date()
    return masterdata.holiday_years(first_day, last_day)


def _run(simulation: Simulation, args, plan: Plan, backfill: bool) -> bool:
    """Send the readings; True when interrupted (what was queued is still sent)."""
    progress = ProgressBar()
    try:
        if backfill:
            print(f"Backfilling {plan.expected_readings:,} readings: local days {plan.first_day} to "
                  f"{plan.first_day + timedelta(days=args.backfill_days - 1)}, {plan.intervals:,} intervals...")
            simulation.backfill(plan.start_at, plan.intervals, max_readings=args.count,
                                progress=lambda totals: progress(totals, plan.expected_readings))
            progress(simulation.totals, min(plan.expected_readings, args.count or 1 << 62), final=True)
        else:
            print("Starting telemetry simulation... (Press Ctrl+C to stop)")
            print(RULE)
            simulation.live(args.interval, max_readings=args.count, quiet=args.quiet)
    except KeyboardInterrupt:
        print("\nStopping: sending what is still queued (Ctrl+C again to abort)...", file=sys.stderr)
        simulation.finish()
        return True
    finally:
        simulation.producer.flush(args.flush_timeout)
        simulation.producer.close()
    return False


def simulate(args, rates: ChaosRates) -> int:
    backfill = args.backfill_days is not None
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    utility_zone = load_settings().timezone
    try:
        error = _zone_error(utility_zone, "LAKEHOUSE_TIMEZONE")
        if error:
            raise SimulationError(error.removeprefix("✗ Error: "))
        _print_header(args, backfill, utility_zone, seed)
        devices, zones = _load_fleet(args, backfill, utility_zone)
    except SimulationError as exc:
        print(f"✗ Error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    plan = _plan_backfill(args, devices, zones, utility_zone, seed) if backfill else _plan_live(args, devices, seed)
    try:
        connection = _connect_postgres(args)
        try:
            _seed_calendar(connection, utility_zone, zones, _plan_years(plan, utility_zone))
        finally:
            connection.close()
    except SimulationError as exc:
        print(f"✗ Error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    producer = _connect_producer(args, backfill, devices)
    fleet = Fleet(devices, seed=seed, interval_minutes=args.interval_minutes, start_at=plan.start_at,
                  timezone=utility_zone, episodes=plan.episodes, window=plan.window)
    chaos = TelemetryChaos(rates, seed=seed, known_device_ids={d.device_id for d in devices},
                           window_end_at=plan.window_end_at)
    simulation = Simulation(fleet, producer, topic=args.topic, log_topic=args.fault_log_topic, chaos=chaos)
    interrupted = _run(simulation, args, plan, backfill)
    elapsed_s = simulation.totals.elapsed_s()

    labels = observed_labels(plan.episodes, simulation.totals.last_reading_at)
    if args.fault_labels:
        write_labels_csv(args.fault_labels, labels)
    if labels:
        connection = _connect_postgres(args)
        try:
            masterdata.write_fault_labels(connection, labels)
        finally:
            connection.close()

    print_summary(simulation, producer.stats, elapsed_s, seed, labels, args)
    if producer.stats.failed:
        return EXIT_FAILED
    return EXIT_INTERRUPTED if interrupted else 0


def print_summary(simulation: Simulation, stats, elapsed_s: float, seed: int, labels, args) -> None:
    totals = simulation.totals
    messages = stats.produced
    print(RULE)
    print("Summary")
    print(f"  Readings generated:  {totals.readings:,} ({totals.energy_wh / 1000:,.3f} kWh)")
    print(f"  Telemetry messages:  {totals.telemetry_messages:,} to {args.topic}")
    chaos_counts = {kind: count for kind, count in simulation.chaos.counts.items() if count}
    if chaos_counts:
        print("  Chaos injected:      " + ", ".join(f"{kind} {count:,}" for kind, count in chaos_counts.items()))
    garbage = f" ({simulation.chaos.garbage_lines:,} garbage)" if simulation.chaos.garbage_lines else ""
    print(f"  Fault-log lines:     {totals.log_lines:,} to {args.fault_log_topic}{garbage}")
    print(f"  Messages produced:   {messages:,} ({stats.produced_bytes / 1e6:,.1f} MB)")
    print(f"  Elapsed:             {elapsed_s:,.1f}s")
    print(f"  Throughput:          {messages / elapsed_s:,.0f} msgs/s, "
          f"{stats.produced_bytes / 1e6 / elapsed_s:,.1f} MB/s")
    print(f"  Delivery failures:   {stats.failed:,}")
    for sample in stats.error_samples:
        print(f"    {sample}")
    where = f"{args.fault_labels} and " if args.fault_labels else ""
    print(f"  Fault labels:        {len(labels):,}" + (f" (written to {where}PostgreSQL fault_labels)" if labels else ""))
    if args.record:
        print(f"  Recorded to:         {args.record}")
    print(f"  Seed:                {seed}")
