"""`python3 telemetry_consumer.py`: read and pretty-print telemetry or fault-log messages.

Each message is shown with its partition, offset and key; JSON values are indented, text lines
(fault logs) are shown as they are. A short rate summary is printed every few seconds and when
the consumer stops (Ctrl+C, or --max-messages reached).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from smartmeter.config import TELEMETRY_TOPIC, env, load_settings
from smartmeter.retry import ServiceUnavailable, with_retries

SUMMARY_EVERY_S = 5.0
RULE = "-" * 80


def build_parser() -> argparse.ArgumentParser:
    settings = load_settings()
    parser = argparse.ArgumentParser(
        prog="telemetry_consumer.py",
        description="Read and pretty-print messages from a Kafka topic (telemetry or fault logs).",
    )
    parser.add_argument("--topic", default=env("CONSUMER_TOPIC", TELEMETRY_TOPIC),
                        help="topic to read, e.g. telemetry_raw or meter_fault_logs (env CONSUMER_TOPIC; default telemetry_raw)")
    parser.add_argument("--bootstrap-servers", default=settings.kafka_bootstrap_servers,
                        help=f"Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS; default {settings.kafka_bootstrap_servers})")
    parser.add_argument("--group", default=env("CONSUMER_GROUP", "telemetry-consumer-group"),
                        help="consumer group (env CONSUMER_GROUP; default telemetry-consumer-group)")
    parser.add_argument("--from-beginning", action="store_true",
                        help="start at the oldest retained message instead of the group's position")
    parser.add_argument("--max-messages", type=_positive_int, default=None,
                        help="stop after N messages")
    parser.add_argument("--compact", action="store_true", help="one line per message")
    parser.add_argument("--connect-retries", type=_positive_int, default=int(env("CONSUMER_CONNECT_RETRIES", "5")),
                        help="attempts to reach Kafka before giving up (env CONSUMER_CONNECT_RETRIES; default 5)")
    parser.add_argument("--connect-timeout", type=float, default=5.0, help="seconds per connection attempt")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def format_message(partition: int, offset: int, key: bytes | None, value: bytes | None, compact: bool) -> str:
    """A printable block for one message: header with coordinates, then the value."""
    key_text = key.decode("utf-8", "replace") if key is not None else "-"
    text = value.decode("utf-8", "replace") if value is not None else ""
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if compact or not isinstance(document, dict):
        body = text if document is None or compact else json.dumps(document)
        return f"[partition {partition} | offset {offset} | key {key_text}] {body}"
    return f"[partition {partition} | offset {offset} | key {key_text}]\n{json.dumps(document, indent=2)}"


class RateSummary:
    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self.count = 0
        self._window_start = self.started
        self._window_count = 0

    def add(self) -> None:
        self.count += 1
        self._window_count += 1

    def due(self) -> bool:
        return self._clock() - self._window_start >= SUMMARY_EVERY_S

    def line(self) -> str:
        now = self._clock()
        window_s = max(now - self._window_start, 1e-9)
        rate = self._window_count / window_s
        self._window_start, self._window_count = now, 0
        return f"-- {self.count:,} messages so far, {rate:,.1f} msg/s over the last {window_s:.0f}s"

    def final(self) -> str:
        elapsed_s = max(self._clock() - self.started, 1e-9)
        return f"Consumed {self.count:,} messages in {elapsed_s:.1f}s ({self.count / elapsed_s:,.1f} msg/s)"


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class ErrorReporter:
    """The client's error callback, as in confluent-kafka's examples: report each error (once
    while it repeats), and remember a fatal one, which ends the run."""

    def __init__(self) -> None:
        self.last: str | None = None
        self.fatal = None

    def __call__(self, error) -> None:
        text = str(error)
        if text != self.last:
            print(f"  Kafka: {text}", file=sys.stderr, flush=True)
            self.last = text
        if error.fatal():
            self.fatal = error


def _connect(args, errors: ErrorReporter):
    """A consumer whose topic exists, or None after saying why."""
    from confluent_kafka import Consumer, KafkaException

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap_servers,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "error_cb": errors,
    })
    try:
        metadata = with_retries(
            lambda: consumer.list_topics(timeout=args.connect_timeout),
            service="Kafka", address=args.bootstrap_servers,
            attempts=args.connect_retries, backoff_s=1.0, retry_on=(KafkaException,),
        )
    except ServiceUnavailable as exc:
        print(f"✗ Error: {exc}", file=sys.stderr)
        consumer.close()
        return None
    if args.topic not in metadata.topics:
        print(f"✗ Error: topic {args.topic!r} does not exist at {args.bootstrap_servers}; "
              f"existing topics: {', '.join(sorted(t for t in metadata.topics if not t.startswith('__')))}",
              file=sys.stderr)
        consumer.close()
        return None
    return consumer


def _consume(consumer, args, errors: ErrorReporter, summary: RateSummary) -> int:
    """Print messages until --max-messages (or Ctrl+C); 1 on a fatal Kafka error."""
    while args.max_messages is None or summary.count < args.max_messages:
        message = consumer.poll(0.5)
        if summary.due():
            print(summary.line(), flush=True)
        fatal = errors.fatal or (message.error() if message is not None and message.error() and
                                 message.error().fatal() else None)
        if fatal is not None:
            print(f"✗ Error: fatal Kafka error, stopping: {fatal}", file=sys.stderr)
            return 1
        if message is None:
            continue
        if message.error():
            errors(message.error())
            continue
        summary.add()
        print(format_message(message.partition(), message.offset(), message.key(), message.value(), args.compact),
              flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from confluent_kafka import OFFSET_BEGINNING

    errors = ErrorReporter()
    consumer = _connect(args, errors)
    if consumer is None:
        return 1

    def on_assign(consumer_, partitions) -> None:
        if args.from_beginning:
            for partition in partitions:
                partition.offset = OFFSET_BEGINNING
        consumer_.assign(partitions)

    # Stop cleanly on Ctrl+C and on kill, even when started with SIGINT ignored (e.g. with `&`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    consumer.subscribe([args.topic], on_assign=on_assign)
    print(f"Reading {args.topic} from {args.bootstrap_servers} as group {args.group}"
          f"{' from the beginning' if args.from_beginning else ''} (Ctrl+C to stop)")
    print(RULE)
    summary = RateSummary()
    code = 0
    try:
        code = _consume(consumer, args, errors, summary)
    except KeyboardInterrupt:
        print("\nStopping.", file=sys.stderr)
    finally:
        consumer.close()
    print(RULE)
    print(summary.final())
    return code
