"""The restatement log: every change to a value already published in the usage and billing marts.

A value is published when a run that left no backlog wrote it after its period (the local day;
the calendar month for customer_billing_monthly) had ended, plus RESTATEMENT_GRACE_MINUTES for
the last readings still on their way. While a catch-up is under way, or while the period is
still running, values change as readings arrive, and that is not a restatement.

After each successful run that left no backlog, each published mart is compared with itself as it
was after the last such run, by Iceberg time travel (`FOR VERSION AS OF`). pipeline.state keeps
that snapshot per mart (`restatements:<mart>`), with the run that published it. Only the
customer-periods that later runs wrote are compared. Each changed measure becomes one row of
`restatements` (dbt-project/models/marts/restatements.yml describes it) with the old and new
values and the reason, found from the customer's usage over the period:

- ESTIMATE_REPLACED: less of it is estimated than before: actual readings replaced estimates;
- LATE_DATA: otherwise its actual or estimated energy changed: readings arrived late;
- CORRECTION: a reading of the period was corrected (a message with `"is_correction": true`
  replaced it in stg_telemetry_raw), or its energy did not change, yet the value did (a tariff,
  holiday or meter assignment changed, and the period was recomputed).

The rows are written with a MERGE keyed on the published snapshot, so a run killed after writing
them and before moving the checkpoint writes the same rows again, not twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from smartmeter.config import TRINO_DBT_USER, Settings
from smartmeter.pipeline.store import PipelineStore
from smartmeter.trino_sql import TrinoSession

ESTIMATE_REPLACED, LATE_DATA, CORRECTION = "ESTIMATE_REPLACED", "LATE_DATA", "CORRECTION"
STATE_PREFIX = "restatements:"
# Values closer than this are the same number summed in another order.
TOLERANCE = 1e-6


@dataclass(frozen=True)
class PublishedMart:
    name: str
    date_column: str
    measures: tuple[str, ...]
    # The key column below the customer-period, if any (a row per time-of-use period).
    period_column: str | None = None
    # How long a row's period lasts from date_column: a local day, or a calendar month.
    period_unit: str = "day"

    def key_columns(self) -> list[str]:
        return ["customer_id", self.date_column] + ([self.period_column] if self.period_column else [])


USAGE = PublishedMart("customer_usage_summary", "reading_date", ("total_energy_kwh", "estimated_energy_kwh"))
BILLED = ("energy_kwh", "energy_cost", "estimated_energy_kwh", "estimated_energy_cost")
PUBLISHED_MARTS = (USAGE, PublishedMart("customer_billing_daily", "billing_date", BILLED, "tou_period"),
                   PublishedMart("customer_billing_monthly", "billing_month", BILLED, "tou_period", "month"))


@dataclass(frozen=True)
class Checkpoint:
    snapshot_id: int
    run_id: int

    def __str__(self) -> str:
        return f"{self.snapshot_id}:{self.run_id}"

    @classmethod
    def parse(cls, text: str | None) -> Checkpoint | None:
        if not text:
            return None
        snapshot_id, run_id = text.split(":")
        return cls(int(snapshot_id), int(run_id))


@dataclass(frozen=True)
class Comparison:
    """A mart as published (at checkpoint `since`) against its snapshot `now`, with the usage
    mart's two snapshots, from which each customer-period's (a day's or a month's) change reason comes."""
    mart: PublishedMart
    since: Checkpoint
    now: int
    published_at: datetime
    restated_at: datetime
    usage_from: int
    usage_to: int


def published_checkpoints(store: PipelineStore) -> dict[str, Checkpoint | None]:
    """Mart name -> its last published snapshot, if any run has published it."""
    return {m.name: Checkpoint.parse(store.get_state(STATE_PREFIX + m.name)) for m in PUBLISHED_MARTS}


def _sql_list(values: Sequence[object]) -> str:
    return ", ".join(f"date '{v}'" for v in values)


def _timestamp(at: datetime) -> str:
    return f"from_iso8601_timestamp('{at.astimezone(UTC).isoformat()}')"


class RestatementLog:
    """Writes one scope's restatements; call record(store, run_id) with the writer lock held."""

    def __init__(self, settings: Settings, progress: Callable[[str], None] = print) -> None:
        self.settings = settings.as_trino(TRINO_DBT_USER)
        self.say = progress
        marts = self.settings.schema("marts")
        self.log_table = f'iceberg."{marts}".restatements'
        self._marts_schema = marts

    def table(self, mart: PublishedMart, suffix: str = "") -> str:
        return f'iceberg."{self._marts_schema}"."{mart.name}{suffix}"'

    def current_snapshot(self, trino: TrinoSession, mart: PublishedMart) -> int | None:
        rows = trino.rows(f"select snapshot_id from {self.table(mart, '$history')} "
                          "where is_current_ancestor order by made_current_at desc limit 1")
        return int(rows[0][0]) if rows else None

    def committed_at(self, trino: TrinoSession, mart: PublishedMart, *snapshot_ids: int) -> dict[int, datetime]:
        """Snapshot id -> commit time, for those of `snapshot_ids` that were not expired."""
        rows = trino.rows(f"select snapshot_id, committed_at from {self.table(mart, '$snapshots')} "
                          f"where snapshot_id in ({', '.join(str(i) for i in snapshot_ids)})")
        return {int(snapshot_id): at for snapshot_id, at in rows}

    def record(self, store: PipelineStore, run_id: int) -> int:
        """Log what changed since the last published snapshots; returns the rows written."""
        written = 0
        with TrinoSession(self.settings) as trino:
            published = published_checkpoints(store)
            current = {m.name: self.current_snapshot(trino, m) for m in PUBLISHED_MARTS}
            usage_from, usage_to = published[USAGE.name], current[USAGE.name]
            changed = [m for m in PUBLISHED_MARTS if None not in (published[m.name], current[m.name], usage_from, usage_to)
                       and published[m.name].snapshot_id != current[m.name]]
            usage_kept = bool(changed) and bool(self.committed_at(trino, USAGE, usage_from.snapshot_id))
            for mart in changed:
                since, now = published[mart.name], current[mart.name]
                commits = self.committed_at(trino, mart, since.snapshot_id, now)
                if since.snapshot_id not in commits or not usage_kept:
                    # maintenance keeps these snapshots (maintenance.py), so this takes a manual expiry
                    self.say(f"restatements: {mart.name}'s published snapshot was expired; changes since run "
                             f"{since.run_id} are not logged")
                    continue
                written += self._log(trino, Comparison(mart, since, now, commits[since.snapshot_id], commits[now],
                                                       usage_from.snapshot_id, usage_to), run_id)
            for mart in PUBLISHED_MARTS:
                if current[mart.name] is not None:
                    store.set_state(STATE_PREFIX + mart.name, str(Checkpoint(current[mart.name], run_id)))
        if written:
            self.say(f"restatements: {written} published value(s) changed (see {self.log_table})")
        return written

    def _log(self, trino: TrinoSession, comparison: Comparison, run_id: int) -> int:
        changes = self.changes_sql(trino, comparison, run_id)
        if changes is None:
            return 0
        # An equi-join (tou_period is null for customer_usage_summary): `is not distinct from`
        # would make Trino compare every pair of rows.
        key = ("mart_name", "customer_id", "period_date", "tou_period", "measure_name", "published_snapshot_id")
        columns = key + ("batch_id", "old_value", "new_value", "change_reason", "published_at",
                         "restated_snapshot_id", "restated_at")
        merge = f"""
            merge into {self.log_table} as log
            using ({changes}) as change
            on {" and ".join(f"log.{k} = change.{k}" for k in key if k != "tou_period")}
                and coalesce(log.tou_period, '') = coalesce(change.tou_period, '')
            when matched then update set
                {", ".join(f"{c} = change.{c}" for c in columns[len(key):])}
            when not matched then insert ({", ".join(columns)})
                values ({", ".join(f"change.{c}" for c in columns)})
        """
        return trino.scalar(merge)

    def changes_sql(self, trino: TrinoSession, comparison: Comparison, run_id: int) -> str | None:
        """The SELECT of the mart's restatements between the two snapshots, or None when no period can have any."""
        mart, since, now = comparison.mart, comparison.since, comparison.now
        table, date, unit = self.table(mart), mart.date_column, mart.period_unit
        # The last day that had ended anywhere (UTC+14 ends first) when the snapshot was published:
        # in a live cycle, today (and this month) is left out here.
        last_day = (comparison.published_at.astimezone(UTC)
                    - timedelta(minutes=self.settings.restatement_grace_minutes, hours=10)).date()
        days = [r[0] for r in trino.rows(
            f"select distinct {date} from {table} for version as of {now} where batch_id > {since.run_id} "
            f"and {date} + interval '1' {unit} <= date '{last_day + timedelta(days=1)}'")]
        if not days:
            return None

        def usage(snapshot_id: int) -> str:
            """The customers' usage per period at a snapshot, for the reasons."""
            return f"""
                select
                    customer_id, date_trunc('{unit}', reading_date) as period_date,
                    sum(total_energy_kwh) as total_energy_kwh, sum(estimated_energy_kwh) as estimated_energy_kwh
                from {self.table(USAGE)} for version as of {snapshot_id}
                where reading_date between date '{min(days)}' and date '{max(days)}' + interval '1' {unit} - interval '1' day
                    and date_trunc('{unit}', reading_date) in ({_sql_list(days)})
                group by 1, 2
            """

        def touched_rows(snapshot_id: int) -> str:
            return (f"select * from {table} for version as of {snapshot_id} "
                    f"where {date} in ({_sql_list(days)}) and (customer_id, {date}) in (select * from touched)")

        keys = mart.key_columns()
        period = f"old.{mart.period_column}" if mart.period_column else "cast(null as varchar)"
        old_values = ", ".join(f"old.{m}" for m in mart.measures)
        new_values = ", ".join(f"new.{m}" for m in mart.measures)
        names = ", ".join(f"'{m}'" for m in mart.measures)
        on = " and ".join(f"old.{k} = new.{k}" for k in keys)
        staging = f'iceberg."{self.settings.schema("staging")}"'
        return f"""
            with
            customers as (
                select customer_id, timezone from {staging}.stg_customers
            ),
            corrected as (
                -- customer-periods with a reading corrected since publication; a reading counts
                -- on the local day of the interval it closes
                select distinct
                    devices.customer_id,
                    date_trunc('{unit}', date(
                        at_timezone(readings.reading_at - interval '1' second, coalesce(customers.timezone, 'UTC'))
                    )) as period_date
                from {staging}.stg_telemetry_raw as readings
                inner join {staging}.stg_devices as devices on readings.device_id = devices.device_id
                left join customers on devices.customer_id = customers.customer_id
                where readings.is_correction and readings.batch_id > {since.run_id}
                    and readings.reading_at >= with_timezone(cast(date '{min(days)}' - interval '1' day as timestamp), 'UTC')
                    and readings.reading_at
                        < with_timezone(cast(date '{max(days)}' + interval '1' {unit} + interval '2' day as timestamp), 'UTC')
            ),
            touched as (
                select distinct customer_id, {date} as period_date from {table} for version as of {now}
                where batch_id > {since.run_id} and {date} in ({_sql_list(days)})
            ),
            old as ({touched_rows(since.snapshot_id)}),
            new as ({touched_rows(now)}),
            usage_old as ({usage(comparison.usage_from)}),
            usage_new as ({usage(comparison.usage_to)}),
            period_reasons as (
                select
                    coalesce(usage_new.customer_id, usage_old.customer_id) as customer_id,
                    coalesce(usage_new.period_date, usage_old.period_date) as period_date,
                    case
                        when corrected.customer_id is not null then '{CORRECTION}'
                        when coalesce(usage_new.estimated_energy_kwh, 0)
                            < coalesce(usage_old.estimated_energy_kwh, 0) - {TOLERANCE} then '{ESTIMATE_REPLACED}'
                        when abs(coalesce(usage_new.total_energy_kwh, 0) - coalesce(usage_old.total_energy_kwh, 0))
                            > {TOLERANCE}
                            or abs(coalesce(usage_new.estimated_energy_kwh, 0)
                                - coalesce(usage_old.estimated_energy_kwh, 0)) > {TOLERANCE}
                            then '{LATE_DATA}'
                        else '{CORRECTION}'
                    end as change_reason
                from usage_old
                full outer join usage_new
                    on usage_old.customer_id = usage_new.customer_id and usage_old.period_date = usage_new.period_date
                left join corrected
                    on coalesce(usage_new.customer_id, usage_old.customer_id) = corrected.customer_id
                    and coalesce(usage_new.period_date, usage_old.period_date) = corrected.period_date
            ),
            pairs as (
                select
                    old.customer_id,
                    old.{date} as period_date,
                    {period} as tou_period,
                    measure.measure_name,
                    measure.old_value,
                    measure.new_value
                from old
                left join new on {on}
                cross join unnest(array[{names}], array[{old_values}], array[{new_values}])
                    as measure (measure_name, old_value, new_value)
            )
            select
                {run_id} as batch_id,
                '{mart.name}' as mart_name,
                pairs.customer_id,
                pairs.period_date,
                pairs.tou_period,
                pairs.measure_name,
                pairs.old_value,
                pairs.new_value,
                coalesce(period_reasons.change_reason, '{CORRECTION}') as change_reason,
                {since.snapshot_id} as published_snapshot_id,
                {_timestamp(comparison.published_at)} as published_at,
                {now} as restated_snapshot_id,
                {_timestamp(comparison.restated_at)} as restated_at
            from pairs
            left join period_reasons
                on pairs.customer_id = period_reasons.customer_id and pairs.period_date = period_reasons.period_date
            left join customers on pairs.customer_id = customers.customer_id
            where
                (pairs.new_value is null and pairs.old_value is not null
                    or abs(pairs.new_value - pairs.old_value) > {TOLERANCE})
                -- only periods that had ended, in the customer's zone, when they were published
                and with_timezone(cast(pairs.period_date + interval '1' {unit} as timestamp),
                    coalesce(customers.timezone, 'UTC'))
                    + interval '{self.settings.restatement_grace_minutes}' minute
                    <= {_timestamp(comparison.published_at)}
        """
