"""The Kafka topics the pipeline loads, and what it knows of each one in Kafka right now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from smartmeter.config import Settings
from smartmeter.errors import LakehouseError


@dataclass(frozen=True)
class PipelineTopic:
    key: str
    """The topic's key in the dbt var `kafka_batch` (telemetry, fault_logs)."""
    name: str
    landing_model: str
    dbt_source: str
    """dbt selector of the source that reads it, e.g. source:kafka.telemetry_raw."""


def pipeline_topics(settings: Settings) -> tuple[PipelineTopic, ...]:
    return (
        PipelineTopic("telemetry", settings.telemetry_topic, "stg_telemetry_messages", "source:kafka.telemetry_raw"),
        PipelineTopic("fault_logs", settings.fault_log_topic, "stg_fault_log_messages", "source:kafka.meter_fault_logs"),
    )


@dataclass(frozen=True)
class PartitionState:
    log_start_offset: int
    log_end_offset: int


@dataclass(frozen=True)
class TopicState:
    name: str
    topic_id: str
    partitions: dict[int, PartitionState]


def _hex_topic_id(uuid) -> str:
    """Kafka's topic id as 32 hex digits (its own text form is base64, with '/' and '+')."""
    mask = (1 << 64) - 1
    return f"{uuid.get_most_significant_bits() & mask:016x}{uuid.get_least_significant_bits() & mask:016x}"


def _admin(settings: Settings):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers, "socket.timeout.ms": 5000,
                        "log_level": 0})


def delete_topics(settings: Settings, names: Sequence[str]) -> None:
    """Delete those of the topics that exist (Kafka finishes in the background)."""
    admin = _admin(settings)
    doomed = [name for name in names if name in admin.list_topics(timeout=15).topics]
    for future in admin.delete_topics(doomed, operation_timeout=30).values() if doomed else []:
        future.result()


def recreate_topics(settings: Settings, names: Sequence[str], partitions: int = 3, timeout_s: float = 60) -> None:
    """Delete the topics that exist and create all of them empty (for tests and benchmarks, which
    start from nothing). Kafka deletes in the background: creating retries until the names are free."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    delete_topics(settings, names)
    admin = _admin(settings)
    created: set[str] = set()

    def create_the_rest() -> None:
        wanted = [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names if name not in created]
        errors = []
        for name, future in admin.create_topics(wanted).items():
            try:
                future.result()
                created.add(name)
            except KafkaException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    Retrying(stop=stop_after_delay(timeout_s), wait=wait_fixed(1), retry=retry_if_exception_type(KafkaException),
             reraise=True)(create_the_rest)


def ensure_topics(settings: Settings, names: Sequence[str], partitions: int = 3, timeout_s: float = 30) -> None:
    """Create the topics that do not exist yet (a topic the pipeline writes, for a new scope), and
    wait until Kafka answers for them."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    # Creating and ignoring "already exists" instead of listing topics first: a metadata listing
    # times out under a process clock that was stepped back (tests/integration/test_faults.py).
    admin = _admin(settings)
    futures = admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names])
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise LakehouseError(f"cannot create Kafka topic {name}: {exc.args[0].str()}") from exc

    if created:
        # A new topic answers offset requests only once its partitions have leaders.
        Retrying(stop=stop_after_delay(timeout_s), wait=wait_fixed(0.5), retry=retry_if_exception_type(LakehouseError),
                 reraise=True)(describe_topics, settings, created)


def describe_topics(settings: Settings, names: Sequence[str], timeout_s: float = 15) -> dict[str, TopicState]:
    """Topic id and the log start and end offset of every partition, straight from Kafka."""
    from confluent_kafka import KafkaException, TopicCollection, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    admin = _admin(settings)
    try:
        described = admin.describe_topics(TopicCollection(list(names)), request_timeout=timeout_s)
        descriptions = {name: future.result() for name, future in described.items()}
        states: dict[str, TopicState] = {}
        for name, description in descriptions.items():
            partitions = [p.id for p in description.partitions]
            offsets: dict[int, dict[str, int]] = {p: {} for p in partitions}
            for label, spec in (("start", OffsetSpec.earliest()), ("end", OffsetSpec.latest())):
                futures = admin.list_offsets({TopicPartition(name, p): spec for p in partitions}, request_timeout=timeout_s)
                for tp, future in futures.items():
                    offsets[tp.partition][label] = future.result().offset
            states[name] = TopicState(
                name=name,
                topic_id=_hex_topic_id(description.topic_id),
                partitions={p: PartitionState(o["start"], o["end"]) for p, o in offsets.items()},
            )
        return states
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        raise LakehouseError(
            f"cannot read topic offsets from Kafka at {settings.kafka_bootstrap_servers}: {error}. "
            "Is the stack up (./lakehouse status), and do the topics exist?"
        ) from exc
