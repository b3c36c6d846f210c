"""The pipeline's line in `./lakehouse status`: lag per topic and the age of the last good cycle."""

from __future__ import annotations

from smartmeter.config import Settings
from smartmeter.errors import LakehouseError
from smartmeter.pipeline.loop import loop_health
from smartmeter.pipeline.store import PipelineStore
from smartmeter.pipeline.topics import describe_topics, pipeline_topics


def topic_lag(settings: Settings) -> dict[str, int]:
    """Messages in Kafka that no successful run has loaded yet, per topic."""
    store = PipelineStore(settings)
    try:
        committed = store.last_committed_offsets()
    finally:
        store.close()
    names = [t.name for t in pipeline_topics(settings)]
    lag = {}
    for name, state in describe_topics(settings, names).items():
        behind = 0
        for partition, offsets in state.partitions.items():
            topic_id, end = committed.get((name, partition), (state.topic_id, offsets.log_start_offset))
            start = end if topic_id == state.topic_id else offsets.log_start_offset
            behind += max(0, offsets.log_end_offset - start)
        lag[name] = behind
    return lag


def pipeline_status(settings: Settings) -> str:
    healthy, text = loop_health(settings)
    try:
        lag = ", ".join(f"{topic} {count:,}" for topic, count in topic_lag(settings).items())
    except LakehouseError as exc:
        lag = f"unknown ({exc})"
    return f"pipeline loop {'healthy' if healthy else 'UNHEALTHY'}: {text}; lag now {lag}"
