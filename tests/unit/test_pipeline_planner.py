"""The batch planner, its Kafka continuity checks and the batch passed to dbt (no services: plain
inputs, exact outputs)."""

from __future__ import annotations

from smartmeter.pipeline.cycle import DAY_TAILS_STATE, Runner
from smartmeter.pipeline.planner import plan_topic
from smartmeter.pipeline.topics import PartitionState, TopicState


def topic(topic_id: str = "new", **partitions: tuple[int, int]) -> TopicState:
    return TopicState("telemetry_raw", topic_id, {int(p[1:]): PartitionState(*bounds) for p, bounds in partitions.items()})


def test_first_batch_starts_at_offset_zero_and_is_bounded_per_partition():
    batch, gaps = plan_topic("telemetry", topic(p0=(0, 2500), p1=(0, 40)), {}, {}, max_per_partition=1000)
    assert gaps == []
    assert [(r.partition, r.start, r.end, r.behind) for r in batch.ranges] == [(0, 0, 1000, 1500), (1, 0, 40, 0)]
    assert batch.size == 1040 and batch.behind == 1500
    assert batch.dbt_var() == {"topic_id": "new", "partitions": [[0, 0, 1000], [1, 0, 40]]}


def test_next_batch_continues_one_past_the_stored_offset():
    stored = {("new", 0): 999, ("new", 1): 39}
    batch, gaps = plan_topic("telemetry", topic(p0=(0, 2500), p1=(0, 40)), stored, {}, max_per_partition=1000)
    assert gaps == []
    assert [(r.start, r.end) for r in batch.ranges] == [(1000, 2000), (40, 40)]
    assert batch.dbt_var()["partitions"] == [[0, 1000, 2000]], "an empty range is not read"


def test_retention_that_deleted_unread_messages_is_a_gap():
    stored = {("new", 0): 99}
    batch, gaps = plan_topic("telemetry", topic(p0=(150, 400)), stored, {}, max_per_partition=1000)
    assert batch.ranges == []
    [gap] = gaps
    assert (gap.kind, gap.partition, gap.first_missing_offset, gap.messages_lost, gap.resume_offset) == (
        "RETENTION", 0, 100, 50, 150)
    assert "50 message(s) were deleted" in gap.detail


def test_a_never_loaded_partition_whose_log_no_longer_starts_at_zero_is_a_gap():
    _, [gap] = plan_topic("telemetry", topic(p0=(10, 20)), {}, {}, max_per_partition=1000)
    assert (gap.kind, gap.messages_lost) == ("RETENTION", 10)


def test_a_recreated_topic_is_a_gap_until_acknowledged():
    stored = {("old", 0): 5000, ("old", 1): 4000}
    batch, gaps = plan_topic("telemetry", topic(p0=(0, 10), p1=(0, 0)), stored, {}, max_per_partition=1000)
    assert {g.kind for g in gaps} == {"TOPIC_RECREATED"} and len(gaps) == 2
    assert gaps[0].previous_topic_id == "old" and "deleted and recreated" in gaps[0].detail
    assert batch.ranges == []
    resumes = {("new", 0): 0, ("new", 1): 0}
    batch, gaps = plan_topic("telemetry", topic(p0=(0, 10), p1=(0, 0)), stored, resumes, max_per_partition=1000)
    assert gaps == [] and [(r.start, r.end) for r in batch.ranges] == [(0, 10), (0, 0)]


def test_offsets_beyond_the_log_end_are_a_gap():
    _, [gap] = plan_topic("telemetry", topic(p0=(0, 10)), {("new", 0): 49}, {}, max_per_partition=1000)
    assert gap.kind == "OFFSETS_RESET" and "ends at 10" in gap.detail


def test_an_acknowledged_retention_gap_resumes_at_the_log_start():
    stored = {("new", 0): 99}
    batch, gaps = plan_topic("telemetry", topic(p0=(150, 400)), stored, {("new", 0): 150}, max_per_partition=100)
    assert gaps == [] and [(r.start, r.end) for r in batch.ranges] == [(150, 250)]


class StateStore:
    """The pipeline store's keyed state, in memory."""

    def __init__(self, **state: str) -> None:
        self.state = dict(state)

    def get_state(self, key: str) -> str | None:
        return self.state.get(key)

    def set_state(self, key: str, value: str) -> None:
        self.state[key] = value


def test_the_batch_says_whether_it_leaves_a_backlog_and_since_when_day_tails_were_skipped():
    behind, _ = plan_topic("telemetry", topic(p0=(0, 2500)), {}, {}, max_per_partition=1000)
    caught_up, _ = plan_topic("fault_logs", topic(p0=(0, 40)), {}, {}, max_per_partition=1000)
    batch = Runner._batch(7, [behind, caught_up], 5)
    assert (batch["batch_id"], batch["leaves_backlog"], batch["day_tails_batch_id"]) == (7, True, 5)
    assert set(batch["kafka_batch"]) == {"telemetry", "fault_logs"}
    assert Runner._batch(9, [caught_up], 3)["leaves_backlog"] is False


def test_day_tails_are_recorded_as_written_by_every_run_before_the_first_that_may_skip_them():
    fresh = StateStore()
    assert Runner._day_tails_batch_id(fresh, 7) == 6, "before any run skipped a tail, every earlier run wrote them"
    assert fresh.state == {DAY_TAILS_STATE: "6"}, "recorded before the run, so a killed run leaves it behind"
    recorded = StateStore(**{DAY_TAILS_STATE: "3"})
    assert Runner._day_tails_batch_id(recorded, 9) == 3
    assert recorded.state == {DAY_TAILS_STATE: "3"}
