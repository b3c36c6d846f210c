"""Kafka producers for confluent-kafka and kafka-python, behind one small interface.

Both follow their client's documented pattern: acks=all with idempotence and retries, a bounded
local queue, a delivery callback that counts successes and failures, and flush before exit.
With confluent-kafka, backfill asks librdkafka to report failures only
(`delivery.report.only.error`): a Python callback per successful message would cost more than
producing it, and after a flush every message not reported as failed was delivered.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from smartmeter.retry import with_retries

CLIENTS = ("confluent", "kafka-python")
_ERROR_SAMPLE_SIZE = 5
_WARNING_EVERY_S = 10.0

# Called with (partition, error or None) once the broker acknowledged or rejected the message.
DeliveryCallback = Callable[[int, str | None], None]


@dataclass
class ProducerStats:
    produced: int = 0
    produced_bytes: int = 0
    failed: int = 0
    error_samples: list[str] = field(default_factory=list)

    def record_failure(self, error: str) -> None:
        self.failed += 1
        if len(self.error_samples) < _ERROR_SAMPLE_SIZE:
            self.error_samples.append(error)


@dataclass(frozen=True)
class ProducerOptions:
    bootstrap_servers: str
    connect_attempts: int = 5
    connect_backoff_s: float = 1.0
    connect_timeout_s: float = 5.0
    linger_ms: int = 20
    queue_max_messages: int = 200_000
    compression: str = "lz4"
    report_each: bool = False


class MessageRecorder:
    """Writes every message the producer accepted as a JSON line, in send order."""

    def __init__(self, path: Path) -> None:
        self._handle: IO[str] = path.open("w", encoding="utf-8")

    def write(self, topic: str, key: bytes | None, value: str | bytes) -> None:
        self._handle.write(json.dumps({
            "topic": topic,
            "key": None if key is None else key.decode(),
            "value": value if isinstance(value, str) else value.decode(),
        }) + "\n")

    def close(self) -> None:
        self._handle.close()


class _BaseProducer:
    def __init__(self, options: ProducerOptions, recorder: MessageRecorder | None) -> None:
        self.options = options
        self.stats = ProducerStats()
        self._recorder = recorder
        self._last_warning_at = 0.0

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warning_at >= _WARNING_EVERY_S:
            self._last_warning_at = now
            print(f"  Kafka: {text} (the client keeps retrying)", file=sys.stderr)

    def close(self) -> None:
        if self._recorder is not None:
            self._recorder.close()


class ConfluentProducer(_BaseProducer):
    def __init__(self, options: ProducerOptions, recorder: MessageRecorder | None = None) -> None:
        from confluent_kafka import KafkaException, Producer

        super().__init__(options, recorder)
        quiet = logging.getLogger("smartmeter.kafka.librdkafka")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
        self._producer = Producer({
            "bootstrap.servers": options.bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "retries": 2_147_483_647,
            "message.timeout.ms": 300_000,
            "linger.ms": options.linger_ms,
            "batch.size": 1_000_000,
            "compression.type": options.compression,
            "queue.buffering.max.messages": options.queue_max_messages,
            "queue.buffering.max.kbytes": 262_144,
            # Same key -> partition mapping as the Java client and kafka-python.
            "partitioner": "murmur2_random",
            "delivery.report.only.error": not options.report_each,
            "on_delivery": self._on_delivery,
            "error_cb": lambda error: self._warn(str(error)),
            "logger": quiet,
        })
        with_retries(
            lambda: self._producer.list_topics(timeout=options.connect_timeout_s),
            service="Kafka", address=options.bootstrap_servers,
            attempts=options.connect_attempts, backoff_s=options.connect_backoff_s,
            retry_on=(KafkaException,),
        )

    def _on_delivery(self, error, message) -> None:
        if error is not None:
            self.stats.record_failure(str(error))

    def topic_exists(self, topic: str) -> bool:
        return topic in self._producer.list_topics(timeout=self.options.connect_timeout_s).topics

    def send_many(self, topic: str, messages: Iterable[tuple[bytes | None, str]]) -> None:
        produce = self._producer.produce
        recorder = self._recorder
        stats = self.stats
        count = 0
        size = 0
        try:
            for key, value in messages:
                try:
                    produce(topic, value, key)
                except BufferError:
                    # Local queue full: serve delivery reports until there is room again.
                    while True:
                        self._producer.poll(0.05)
                        try:
                            produce(topic, value, key)
                            break
                        except BufferError:
                            continue
                count += 1
                size += len(value) + (len(key) if key else 0)
                if recorder is not None:
                    recorder.write(topic, key, value)
        finally:
            stats.produced += count
            stats.produced_bytes += size
        self._producer.poll(0)

    def send(self, topic: str, key: bytes | None, value: str | bytes, on_delivery: DeliveryCallback) -> None:
        def delivered(error, message) -> None:
            if error is not None:
                self.stats.record_failure(str(error))
            on_delivery(message.partition(), None if error is None else str(error))

        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=delivered)
                break
            except BufferError:
                self._producer.poll(0.05)
        self.stats.produced += 1
        self.stats.produced_bytes += len(value) + (len(key) if key else 0)
        if self._recorder is not None:
            self._recorder.write(topic, key, value)

    def poll(self, timeout_s: float = 0) -> None:
        self._producer.poll(timeout_s)

    def flush(self, timeout_s: float) -> int:
        """Wait for outstanding deliveries; messages still queued at the timeout count as failed."""
        remaining = self._producer.flush(timeout_s)
        for _ in range(remaining):
            self.stats.record_failure(f"not delivered within {timeout_s:.0f}s flush timeout")
        return remaining


class KafkaPythonProducer(_BaseProducer):
    def __init__(self, options: ProducerOptions, recorder: MessageRecorder | None = None) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError, NoBrokersAvailable

        super().__init__(options, recorder)
        self._kafka_error = KafkaError
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
        self._producer = with_retries(
            lambda: KafkaProducer(
                bootstrap_servers=options.bootstrap_servers.split(","),
                acks="all",
                enable_idempotence=True,
                retries=2_147_483_647,
                delivery_timeout_ms=300_000,
                linger_ms=options.linger_ms,
                batch_size=512 * 1024,
                max_request_size=2 * 1024 * 1024,
                buffer_memory=64 * 1024 * 1024,
                compression_type=_kafka_python_compression(options.compression),
                api_version_auto_timeout_ms=int(options.connect_timeout_s * 1000),
                request_timeout_ms=30_000,
            ),
            service="Kafka", address=options.bootstrap_servers,
            attempts=options.connect_attempts, backoff_s=options.connect_backoff_s,
            retry_on=(NoBrokersAvailable, KafkaError),
        )

    def _on_error(self, exc: BaseException) -> None:
        self.stats.record_failure(str(exc) or type(exc).__name__)
        self._warn(str(exc) or type(exc).__name__)

    def topic_exists(self, topic: str) -> bool:
        return bool(self._producer.partitions_for(topic))

    def send_many(self, topic: str, messages: Iterable[tuple[bytes | None, str]]) -> None:
        send = self._producer.send
        on_error = self._on_error
        recorder = self._recorder
        count = 0
        size = 0
        try:
            for key, value in messages:
                payload = value.encode() if isinstance(value, str) else value
                send(topic, value=payload, key=key).add_errback(on_error)
                count += 1
                size += len(payload) + (len(key) if key else 0)
                if recorder is not None:
                    recorder.write(topic, key, value)
        finally:
            self.stats.produced += count
            self.stats.produced_bytes += size

    def send(self, topic: str, key: bytes | None, value: str | bytes, on_delivery: DeliveryCallback) -> None:
        payload = value.encode() if isinstance(value, str) else value
        future = self._producer.send(topic, value=payload, key=key)
        future.add_callback(lambda metadata: on_delivery(metadata.partition, None))

        def failed(exc: BaseException) -> None:
            self._on_error(exc)
            on_delivery(-1, str(exc) or type(exc).__name__)

        future.add_errback(failed)
        self.stats.produced += 1
        self.stats.produced_bytes += len(payload) + (len(key) if key else 0)
        if self._recorder is not None:
            self._recorder.write(topic, key, value)

    def poll(self, timeout_s: float = 0) -> None:
        """kafka-python delivers on its own I/O thread; there is nothing to serve here."""

    def flush(self, timeout_s: float) -> int:
        try:
            self._producer.flush(timeout=timeout_s)
        except self._kafka_error as exc:
            self.stats.record_failure(f"flush did not finish within {timeout_s:.0f}s: {exc}")
            return 1
        return 0

    def close(self) -> None:
        self._producer.close(timeout=5)
        super().close()


def _kafka_python_compression(name: str) -> str | None:
    if name in ("", "none"):
        return None
    if name == "lz4":
        try:
            import lz4  # noqa: F401  (kafka-python needs it for lz4 and it is optional)
        except ImportError:
            return None
    return name


def create_producer(
    client: str, options: ProducerOptions, recorder: MessageRecorder | None = None,
) -> ConfluentProducer | KafkaPythonProducer:
    if client == "confluent":
        return ConfluentProducer(options, recorder)
    if client == "kafka-python":
        return KafkaPythonProducer(options, recorder)
    raise ValueError(f"unknown Kafka client {client!r}; choose one of {', '.join(CLIENTS)}")
