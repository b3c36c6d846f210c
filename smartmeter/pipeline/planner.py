"""Kafka continuity and the next bounded batch: pure logic, no I/O.

For every partition of a topic, the next offset to load is one past the highest offset already in
the landing table for the topic's current id, or where an acknowledged gap says to resume. It is
checked against Kafka before anything is read:

- the landing table holds offsets of this topic name under another topic id only: the topic was
  deleted and recreated (TOPIC_RECREATED);
- the next offset is below the partition's log start: retention deleted messages that were
  never loaded (RETENTION);
- the next offset is beyond the partition's end: the partition was reset or truncated
  (OFFSETS_RESET).

Each is a gap: the pipeline stops with an error naming the topic, partition, offsets and
messages lost, until someone acknowledges it. Otherwise the batch is [next, min(end, next + N)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from smartmeter.pipeline.topics import TopicState


@dataclass(frozen=True)
class Gap:
    topic: str
    topic_id: str
    partition: int
    kind: str
    resume_offset: int
    detail: str
    previous_topic_id: str | None = None
    first_missing_offset: int | None = None
    messages_lost: int | None = None


@dataclass(frozen=True)
class PartitionRange:
    partition: int
    start: int
    end: int
    log_end: int

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def behind(self) -> int:
        return self.log_end - self.end


@dataclass
class TopicBatch:
    key: str
    topic: str
    topic_id: str
    ranges: list[PartitionRange] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(r.size for r in self.ranges)

    @property
    def behind(self) -> int:
        return sum(r.behind for r in self.ranges)

    def dbt_var(self) -> dict:
        return {"topic_id": self.topic_id, "partitions": [[r.partition, r.start, r.end] for r in self.ranges if r.size]}


StoredOffsets = dict[tuple[str, int], int]
"""(topic_id, partition) -> highest offset in the landing table."""
Resumes = dict[tuple[str, int], int]
"""(topic_id, partition) -> offset an acknowledged gap resumes at."""


def check_partition(topic: TopicState, partition: int, stored: StoredOffsets, resumes: Resumes) -> tuple[int, Gap | None]:
    """The next offset to load for one partition, or the gap that prevents it."""
    state = topic.partitions[partition]
    key = (topic.topic_id, partition)
    candidates = [stored[key] + 1] if key in stored else []
    candidates += [resumes[key]] if key in resumes else []
    if not candidates:
        other_ids = sorted({topic_id for topic_id, p in stored if topic_id != topic.topic_id})
        if other_ids:
            previous = other_ids[-1]
            loaded = max(offset for (topic_id, _), offset in stored.items() if topic_id in other_ids)
            return state.log_start_offset, Gap(
                topic.name, topic.topic_id, partition, "TOPIC_RECREATED", state.log_start_offset,
                f"topic {topic.name} was deleted and recreated: the lakehouse loaded it up to offset {loaded} "
                f"under topic id {previous}, Kafka now has topic id {topic.topic_id}; whatever the old topic held "
                "beyond what was loaded is gone, and the new topic's offsets start again",
                previous_topic_id=previous,
            )
        candidates = [0]
    next_offset = max(candidates)
    if next_offset < state.log_start_offset:
        lost = state.log_start_offset - next_offset
        return next_offset, Gap(
            topic.name, topic.topic_id, partition, "RETENTION", state.log_start_offset,
            f"{topic.name} partition {partition}: the next offset to load is {next_offset} but Kafka's log now starts "
            f"at {state.log_start_offset}: {lost} message(s) were deleted (retention) before they were loaded",
            first_missing_offset=next_offset, messages_lost=lost,
        )
    if next_offset > state.log_end_offset:
        return next_offset, Gap(
            topic.name, topic.topic_id, partition, "OFFSETS_RESET", next_offset,
            f"{topic.name} partition {partition}: the lakehouse loaded up to offset {next_offset - 1} but Kafka's log "
            f"ends at {state.log_end_offset}: the partition was truncated or reset",
            first_missing_offset=state.log_end_offset,
        )
    return next_offset, None


def plan_topic(key: str, topic: TopicState, stored: StoredOffsets, resumes: Resumes,
               max_per_partition: int) -> tuple[TopicBatch, list[Gap]]:
    """The next batch of one topic (at most max_per_partition messages per partition) and the
    gaps found; a partition with a gap contributes nothing."""
    batch = TopicBatch(key, topic.name, topic.topic_id)
    gaps = []
    for partition in sorted(topic.partitions):
        start, gap = check_partition(topic, partition, stored, resumes)
        if gap is not None:
            gaps.append(gap)
            continue
        log_end = topic.partitions[partition].log_end_offset
        batch.ranges.append(PartitionRange(partition, start, min(log_end, start + max_per_partition), log_end))
    return batch, gaps
