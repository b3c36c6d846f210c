"""One pipeline cycle, and the wrapper every dbt invocation goes through.

A cycle, with the write lock held for all of it:
  1. cancel writes a dead writer left running on Trino, and mark its runs interrupted;
  2. stop on unacknowledged gaps;
  3. read every topic's partitions from Kafka, the landed offsets from the landing tables'
     Iceberg metadata, and plan the next bounded batch (smartmeter/pipeline/planner.py);
  4. with nothing new in Kafka, no master-data change and no project change, stop there: an idle
     cycle never starts dbt;
  5. otherwise record a run (its id is the batch id), run `dbt build` on what is downstream of
     what changed plus the per-batch guard tests, check that every planned offset landed, and
     record the outcome;
  6. after a successful run that left no backlog, log the published values it changed
     (smartmeter/pipeline/restatements.py) and publish the meters' health transitions
     (smartmeter/pipeline/alerts.py).
"""

from __future__ import annotations

import hashlib
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from smartmeter.config import Settings
from smartmeter.errors import LakehouseError, PipelineGapError
from smartmeter.pipeline import lakehouse
from smartmeter.pipeline.alerts import AlertPublisher
from smartmeter.pipeline.dbt import DBT_PROJECT, DbtResult, NodeResult, run_dbt
from smartmeter.pipeline.lock import WriterLock
from smartmeter.pipeline.planner import Gap, TopicBatch, plan_topic
from smartmeter.pipeline.restatements import RestatementLog
from smartmeter.pipeline.store import PipelineStore
from smartmeter.pipeline.topics import describe_topics, pipeline_topics

# dbt commands that may write the lakehouse, so they need the lock and a batch.
WRITING_DBT_COMMANDS = frozenset({"build", "run", "seed", "snapshot", "clone", "run-operation"})
GUARD_TESTS = "tag:cycle"
PROJECT_STATE = "project_fingerprint"
MASTER_DATA_STATE = "master_data_fingerprint"
# The last run that wrote device_intervals without leaving a backlog: it wrote each meter-day's
# tail, the gap from its last reading to its end, which a run that leaves a backlog skips.
DAY_TAILS_STATE = "day_tails_batch_id"


@dataclass
class CycleReport:
    status: str
    reason: str
    run_id: int | None = None
    taken: dict[str, int] = field(default_factory=dict)
    behind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    nodes: list[NodeResult] = field(default_factory=list)

    @property
    def total_behind(self) -> int:
        return sum(self.behind.values())

    def summary(self) -> str:
        taken = ", ".join(f"{t} {n:,}" for t, n in self.taken.items()) or "nothing"
        behind = ", ".join(f"{t} {n:,}" for t, n in self.behind.items()) or "nothing"
        head = f"run {self.run_id} " if self.run_id else ""
        text = f"{head}{self.status}: took {taken}; behind {behind}; {self.seconds:.1f}s ({self.reason})"
        return text + (f"\n  error: {self.error}" if self.error else "")


def project_fingerprint() -> str:
    """Changes whenever the dbt project (or the Kafka table descriptions it reads) changes."""
    digest = hashlib.sha256()
    roots = [DBT_PROJECT / name for name in ("models", "macros", "seeds", "tests", "dbt_project.yml", "profiles.yml")]
    roots.append(DBT_PROJECT.parent / "trino-config" / "etc" / "kafka")
    for root in roots:
        paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in paths:
            digest.update(str(path.relative_to(DBT_PROJECT.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def gap_message(gaps: Sequence, command: str = "./lakehouse pipeline acknowledge-gap") -> str:
    lines = [f"  - gap {getattr(g, 'gap_id', '?')}: {g.detail}" for g in gaps]
    return ("the pipeline stopped: Kafka data it had not loaded can no longer be read.\n" + "\n".join(lines)
            + f"\nNothing more is loaded until someone acknowledges the loss: `{command}` records it as accepted "
              "(pipeline.gaps, shown in ./lakehouse pipeline gaps) and loading resumes where Kafka's data starts.")


class Runner:
    """Runs cycles and wrapped dbt commands for one scope (DBT_SCHEMA_SUFFIX) of the lakehouse."""

    def __init__(self, settings: Settings, trigger: str, progress: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.trigger = trigger
        self.say = progress

    # -- planning ---------------------------------------------------------------------------
    def _plan(self, store: PipelineStore) -> list[TopicBatch]:
        open_gaps = store.gaps(open_only=True)
        if open_gaps:
            raise PipelineGapError(gap_message(open_gaps))
        topics = pipeline_topics(self.settings)
        states = describe_topics(self.settings, [t.name for t in topics])
        batches: list[TopicBatch] = []
        found: list[Gap] = []
        for topic in topics:
            stored = lakehouse.stored_offsets(self.settings, topic.landing_model)
            batch, gaps = plan_topic(topic.key, states[topic.name], stored, store.resumes(topic.name),
                                     self.settings.max_messages_per_partition)
            batches.append(batch)
            found += gaps
        if found:
            store.record_gaps(found)
            raise PipelineGapError(gap_message(store.gaps(open_only=True)))
        return batches

    @staticmethod
    def _day_tails_batch_id(store: PipelineStore, run_id: int) -> int:
        """The last run that wrote every meter-day's tail of VEE gaps (see device_intervals).
        Without a record no run has skipped a tail, so every earlier run wrote them all. That is
        recorded before this run, which may skip tails, so a run killed midway leaves it behind."""
        recorded = store.get_state(DAY_TAILS_STATE)
        if recorded is None:
            recorded = str(run_id - 1)
            store.set_state(DAY_TAILS_STATE, recorded)
        return int(recorded)

    @staticmethod
    def _batch(run_id: int, batches: Sequence[TopicBatch], day_tails_batch_id: int) -> dict:
        return {"batch_id": run_id, "kafka_batch": {b.key: b.dbt_var() for b in batches},
                "leaves_backlog": any(b.behind for b in batches), "day_tails_batch_id": day_tails_batch_id}

    def _cycle_args(self, batches: Sequence[TopicBatch], master_changed: bool, project_changed: bool,
                    unfinished: bool) -> list[str]:
        if project_changed:
            # New or changed models, views and seeds: build all of them once, with the guard tests;
            # the full test suite runs on its schedule and in ./lakehouse dbt build.
            return ["build", "--select", "resource_type:model", "resource_type:seed", GUARD_TESTS,
                    "--indirect-selection", "empty"]
        topics = {t.key: t for t in pipeline_topics(self.settings)}
        # After a run that did not finish, models downstream of every topic may have work left.
        selectors = [f"{topics[b.key].dbt_source}+,resource_type:model" for b in batches if b.size or unfinished]
        if master_changed:
            selectors.append("source:postgresql+,resource_type:model")
        # Only the guard tests: a model's other tests scan whole tables and run on a schedule.
        return ["build", "--select", *selectors, GUARD_TESTS, "--indirect-selection", "empty",
                "--exclude", "config.materialized:view", "resource_type:unit_test"]

    # -- the work ---------------------------------------------------------------------------
    def _execute(self, store: PipelineStore, batches: list[TopicBatch], args: list[str], reason: str,
                 capture: bool, schema_check: bool) -> CycleReport:
        started = time.monotonic()
        run_id = store.start_run(self.trigger, "dbt " + shlex.join(args), reason)
        report = CycleReport("running", reason, run_id, {b.topic: b.size for b in batches},
                             {b.topic: b.behind for b in batches})
        self.say(f"run {run_id}: {reason}; taking " + ", ".join(f"{b.topic} {b.size:,}" for b in batches)
                 + f"; dbt {shlex.join(args)}")
        try:
            batch = self._batch(run_id, batches, self._day_tails_batch_id(store, run_id))
            result = run_dbt(self.settings, args, batch, capture=capture, schema_check=schema_check)
        except BaseException as exc:
            store.finish_run(run_id, "interrupted", error=f"runner stopped: {exc!r}")
            raise
        report.nodes = result.nodes
        if not batch["leaves_backlog"] and result.built("device_intervals"):
            store.set_state(DAY_TAILS_STATE, str(run_id))
        if result.interrupted:
            # dbt cancelled its queries on SIGINT; make sure none of them is still running (or
            # committing) before the lock is released.
            lakehouse.stop_orphaned_writes(self.settings, self.say)
        landed_batches = [b for b in batches if self._landed(b, result)]
        store.record_offsets(run_id, landed_batches)
        report.taken = {b.topic: b.size if b in landed_batches else 0 for b in batches}
        report.behind = {b.topic: b.behind + (0 if b in landed_batches else b.size) for b in batches}
        problems = self._check_landed(landed_batches, run_id)
        report.status, report.error = self._outcome(result, problems)
        if report.status == "ok" and not report.total_behind:
            report.status, report.error = self._publish(store, run_id)
        if problems:
            self._record_incomplete(store, batches, run_id, problems)
        landed = result.rows("stg_telemetry_messages") + result.rows("stg_fault_log_messages")
        rejected = result.rows("stg_telemetry_rejected") + result.rows("stg_fault_logs_rejected")
        store.finish_run(run_id, report.status, messages_taken=sum(report.taken.values()),
                         messages_behind=report.total_behind, rows_landed=landed, rows_rejected=rejected,
                         error=report.error)
        report.seconds = time.monotonic() - started
        return report

    def _publish(self, store: PipelineStore, run_id: int) -> tuple[str, str | None]:
        """Once the pipeline has caught up, its numbers count as published: log what changed in
        them (smartmeter/pipeline/restatements.py) and send health alerts out
        (smartmeter/pipeline/alerts.py). During a catch-up, days hold part of their readings, and
        would be restated or raise alerts that the next batch clears. A run whose log or alerts
        were not written failed, so the next one writes them."""
        from trino.exceptions import TrinoQueryError

        try:
            RestatementLog(self.settings, self.say).record(store, run_id)
        except (LakehouseError, TrinoQueryError) as exc:
            return "failed", f"restatements not logged: {exc}"
        if not self.settings.alerts:
            return "ok", None
        try:
            AlertPublisher(self.settings, self.say).publish(store, run_id)
        except (LakehouseError, TrinoQueryError) as exc:
            return "failed", f"alerts not published: {exc}"
        return "ok", None

    def _landing_model(self, batch: TopicBatch) -> str:
        return next(t.landing_model for t in pipeline_topics(self.settings) if t.key == batch.key)

    def _landed(self, batch: TopicBatch, result: DbtResult) -> bool:
        return result.built(self._landing_model(batch))

    def _check_landed(self, batches: Sequence[TopicBatch], run_id: int) -> list[str]:
        problems = []
        for batch in batches:
            problems += lakehouse.missing_from_batch(self.settings, batch, self._landing_model(batch), run_id)
        return problems

    @staticmethod
    def _outcome(result: DbtResult, problems: list[str]) -> tuple[str, str | None]:
        if result.interrupted:
            return "interrupted", "interrupted (SIGINT/SIGTERM); dbt cancelled its queries"
        if problems:
            return "failed", "offsets planned for this batch did not land: " + "; ".join(problems)
        if result.returncode != 0:
            failed = result.failures()
            detail = "; ".join(f"{n.name}: {(n.message or n.status).splitlines()[0][:300]}" for n in failed[:3])
            return "failed", f"dbt exited {result.returncode}" + (f": {detail}" if detail else "")
        return "ok", None

    @staticmethod
    def _record_incomplete(store: PipelineStore, batches: Sequence[TopicBatch], run_id: int, problems: list[str]) -> None:
        gaps = []
        for batch in batches:
            for r in batch.ranges:
                text = f"{batch.topic} partition {r.partition}:"
                detail = next((p for p in problems if p.startswith(text)), None)
                if detail:
                    gaps.append(Gap(batch.topic, batch.topic_id, r.partition, "INCOMPLETE_BATCH", r.end,
                                    f"run {run_id}: {detail} (Kafka deleted them while they were being read)",
                                    first_missing_offset=r.start))
        store.record_gaps(gaps)

    # -- entry points -----------------------------------------------------------------------
    def cycle(self, *, force: bool = False, wait_for_lock: bool = True, capture: bool = False) -> CycleReport:
        started = time.monotonic()
        lock = WriterLock(self.settings, self.trigger)
        lock.acquire(wait=wait_for_lock, progress=self.say)
        with lock:
            store = PipelineStore(self.settings)
            try:
                self._recover(store)
                batches = self._plan(store)
                master = store.master_data_fingerprint()
                project = project_fingerprint()
                reasons = [f"new messages in {b.topic}" for b in batches if b.size]
                last = store.last_run()
                unfinished = last is not None and last.status != "ok" and last.trigger != "tests"
                if unfinished:
                    reasons.append(f"run {last.run_id} did not finish ({last.status})")
                master_changed = master != store.get_state(MASTER_DATA_STATE)
                project_changed = project != store.get_state(PROJECT_STATE)
                if master_changed:
                    reasons.append("master data changed")
                if project_changed:
                    reasons.append("dbt project changed")
                if not reasons and not force:
                    return CycleReport("idle", "nothing new", None, {b.topic: 0 for b in batches},
                                       {b.topic: b.behind for b in batches}, time.monotonic() - started)
                args = self._cycle_args(batches, master_changed, project_changed, unfinished)
                report = self._execute(store, batches, args, ", ".join(reasons) or "forced", capture,
                                       schema_check=project_changed)
                if report.status == "ok":
                    store.set_state(MASTER_DATA_STATE, master)
                    store.set_state(PROJECT_STATE, project)
                return report
            finally:
                store.close()

    def dbt(self, args: Sequence[str], *, wait_for_lock: bool = True) -> CycleReport | DbtResult:
        """`dbt ARGS` through the runner: writing commands take the lock and this run's batch."""
        command = args[0] if args else ""
        if command == "retry":
            raise LakehouseError("`dbt retry` would replay the last run's Kafka batch; run `./lakehouse dbt build` "
                                 "instead: the runner plans the next batch from what actually landed")
        if command not in WRITING_DBT_COMMANDS:
            store = PipelineStore(self.settings)
            try:
                last = store.last_run()
            finally:
                store.close()
            return run_dbt(self.settings, args, {"batch_id": last.run_id if last else 0, "kafka_batch": {}})
        lock = WriterLock(self.settings, f"dbt {command}")
        lock.acquire(wait=wait_for_lock, progress=self.say)
        try:
            store = PipelineStore(self.settings)
            try:
                self._recover(store)
                batches = self._plan(store)
                report = self._execute(store, batches, list(args), "by hand", capture=False, schema_check=True)
                if report.status == "ok":
                    store.set_state(MASTER_DATA_STATE, store.master_data_fingerprint())
                    if command == "build" and len(args) == 1:
                        store.set_state(PROJECT_STATE, project_fingerprint())
                return report
            finally:
                store.close()
        finally:
            lock.release()

    def full_tests(self) -> CycleReport:
        """The whole data-test suite (it scans whole tables, so it runs on a schedule, not every
        cycle); unit tests belong to CI."""
        started = time.monotonic()
        args = ["test", "--exclude", GUARD_TESTS, "resource_type:unit_test"]
        store = PipelineStore(self.settings)
        try:
            last = store.last_run()
            run_id = store.start_run("tests", "dbt " + shlex.join(args), "scheduled full tests")
            result = run_dbt(self.settings, args, {"batch_id": last.run_id if last else 0, "kafka_batch": {}},
                             capture=True)
            status, error = self._outcome(result, [])
            store.finish_run(run_id, status, error=error)
            return CycleReport(status, "scheduled full tests", run_id, seconds=time.monotonic() - started,
                               error=error, nodes=result.nodes)
        finally:
            store.close()

    def _recover(self, store: PipelineStore) -> None:
        abandoned = store.fail_abandoned_runs()
        if abandoned:
            self.say(f"{abandoned} earlier run(s) ended without finishing (their writer stopped); marked interrupted")
        lakehouse.stop_orphaned_writes(self.settings, self.say)
        dropped = lakehouse.drop_leftover_temporaries(self.settings)
        if dropped:
            self.say(f"dropped {len(dropped)} temporary relation(s) a stopped run left behind: {', '.join(dropped)}")
