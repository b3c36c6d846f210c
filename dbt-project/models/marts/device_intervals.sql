{#-
    VEE: one row per expected reading interval per meter per local day, with the reading that
    arrived for it (if any), a validation status, the codes of the rules that fired, and an estimate
    for a gap. Rules, thresholds and estimation methods: device_intervals.yml and the README's VEE
    section.

    The grid is every interval end of a meter's local day (92, 96 or 100 at 15 min; the current day
    up to when the run started), for each meter-day with a reading or an event. A day a meter sent
    nothing has no rows here: device_health has it, with reading_count 0. A reading belongs to the
    interval end nearest its timestamp.

    Incremental by window: a run re-validates, for each meter-day its batch touched, the intervals
    from the meter's reading before the first touched hour to its reading after the last one (the
    whole rest of the day when there is none), widened by vee_zero_run_min_hours either side and
    then to the meter's readings at or beyond those edges (so a long gap across an edge is
    re-validated whole), since those are all the intervals whose reading, gap, estimate or rule the
    new readings can change. A meter whose new readings only append non-zero readings to its day (a
    live meter's usual case) is not widened back: they change no earlier zero run. A touched hour
    within vee_context_hours of midnight touches the day either side too (a reading just after
    midnight can belong to the day before). So its work follows the batch's hours, not the fleet's
    days. A run that leaves a backlog (a catch-up's every cycle but the last) stops a window with no
    reading after it at the day's last reading (and writes no day with only events), not at the
    day's end, on the dates from a day before the latest its batch's readings reached:
    the next batch would rewrite that tail of gaps again. Each later run writes the skipped tails of
    the dates it has passed, and the run that leaves none the rest (since day_tails_batch_id, kept
    by the runner), so no run writes more than about two days of tails. The rules that look past one
    interval read bounded context only: readings up to vee_context_hours either side of the window,
    and the meter's daily maxima of the vee_spike_reference_days before the day, and, for a long
    gap, the meter's hours (else its segment's) of the same day type in the vee_profile_days before
    it. A batch that changes a meter's hours also re-validates that meter's later days within
    vee_profile_days that miss more than vee_estimation_max_gap_hours, and the same days of its
    segment's meters whose long gaps no own profile estimated: their profile estimates read the
    changed hours.
-#}
{#- Incremental runs read the hours and the landed messages, so dbt is told of the dependency. -#}
-- depends_on: {{ ref('int_device_hours_aggregated') }}, {{ ref('int_segment_hours_aggregated') }}, {{ ref('stg_telemetry_messages') }}
{{ config(
    unique_key=['device_id', 'interval_end_at'],
    properties={'partitioning': "ARRAY['day(interval_end_at)']"},
    post_hook="{{ drop_run_table('windows') }}"
) }}

{%- set default_interval_seconds = (var('expected_reading_interval_minutes') | int) * 60 -%}
{%- set context_hours = var('vee_context_hours') | int -%}
{%- set reference_days = var('vee_spike_reference_days') | int -%}
{%- set max_gap_s = (var('vee_estimation_max_gap_hours') | int) * 3600 -%}
{%- set zero_run_hours = var('vee_zero_run_min_hours') | float | round(0, 'ceil') | int -%}
{%- set profile_days = var('vee_profile_days') | int -%}
{%- set leaves_backlog = is_incremental() and pipeline_batch_value('leaves_backlog', false) -%}
{%- set passed_before = none -%}
{%- if is_incremental() -%}
    {%- set watermark = stored_max_batch_id(this) -%}
    {%- set day_tails_batch_id = pipeline_batch_value('day_tails_batch_id', watermark) | int -%}
    {#- The local dates whose tails the runs since day_tails_batch_id may have skipped start a day
        before the latest those runs' readings reached (skipped_from); a run that leaves a backlog
        skips only the dates from a day before the latest its own batch's readings reach too
        (passed_before), and writes the skipped tails of the dates between: so no run writes more
        tails than about two days of meters, however long the backlog. Readings, not events: a
        backfill's fault logs can land days ahead of its readings, and would pass every date. -#}
    {%- set tail_dates = run_query(
        "select cast(max(usage_date) filter (where batch_id <= " ~ watermark ~ ") - interval '1' day as varchar),"
        ~ " cast(max(usage_date) - interval '1' day as varchar) from " ~ ref('int_device_hours_aggregated')
        ~ " where batch_id > " ~ day_tails_batch_id ~ " and reading_count > 0"
    ).rows[0] if execute and (leaves_backlog or day_tails_batch_id < watermark) else [none, none] -%}
    {%- set skipped_from = tail_dates[0] -%}
    {%- set passed_before = tail_dates[1] if leaves_backlog else none -%}
    {%- set touched_hours_sql -%}
        select hours.device_id, days.reading_date, hours.usage_hour_at
        from {{ ref('int_device_hours_aggregated') }} as hours
        cross join unnest(array[
            hours.usage_date,
            if(hours.local_hour < {{ context_hours }}, hours.usage_date - interval '1' day),
            if(hours.local_hour >= {{ 24 - context_hours }}, hours.usage_date + interval '1' day)
        ]) as days (reading_date)
        where hours.batch_id > {{ watermark }} and days.reading_date is not null
        {%- if skipped_from and (not leaves_backlog or (passed_before and passed_before > skipped_from)) %}
            {#- The tails the runs since the last one that wrote them skipped: from each such
                meter-day's last hour they changed to the day's end. A day whose last changed
                reading is its last interval has none (the run that brought it wrote to the
                day's end), which is most meters' day in a backfill. #}
            union all
            select device_id, usage_date, max(usage_hour_at)
            from {{ ref('int_device_hours_aggregated') }}
            where
                batch_id > {{ day_tails_batch_id }}
                and usage_date >= date '{{ skipped_from }}'
                and usage_date < date '{{ passed_before or "9999-12-31" }}'
            group by device_id, usage_date
            having not coalesce(
                max_by(
                    local_hour = 23
                    and last_reading_at + interval_seconds / 2 * interval '1' second >= usage_hour_at + interval '1' hour,
                    usage_hour_at
                ) filter (where reading_count > 0),
                false
            )
        {%- endif %}
    {%- endset -%}
    {%- set new_readings_range = run_query(
        "select cast(min(reading_at) as varchar), cast(max(reading_at) as varchar) from "
        ~ ref('stg_telemetry_messages') ~ " where batch_id > " ~ watermark ~ " and reject_reason is null"
    ).rows[0] if execute else [none, none] -%}
    {%- set touched_dates = [] -%}
    {%- do collect_dates("select distinct reading_date from (" ~ touched_hours_sql ~ ")", touched_dates) -%}
    {%- if touched_dates -%}
        {%- set dependent_days_sql = vee_profile_dependent_days(touched_dates, watermark) -%}
        {#- Run once here and inlined: Trino would run a subquery at each of its uses. -#}
        {%- set dependent_days = run_query(dependent_days_sql).rows if execute else [] -%}
        {%- if dependent_days | length > 0 -%}
            {%- set touched_hours_sql -%}
                {{ touched_hours_sql }}
                union all
                select
                    device_id,
                    reading_date,
                    cast(null as timestamp(6) with time zone) as usage_hour_at
                from ({{ device_days_relation(dependent_days, dependent_days_sql) }}) as dependents (device_id, reading_date)
            {%- endset -%}
            {%- for row in dependent_days if (row[1] | string) not in touched_dates -%}
                {%- do touched_dates.append(row[1] | string) -%}
            {%- endfor -%}
            {%- do touched_dates.sort() -%}
        {%- endif -%}
    {%- endif -%}
{%- endif %}

{#- The intervals each meter-day re-validates (its window) and its grid bounds. Four CTEs below
    read them, so an incremental run writes them once to a run table (macros/run_tables.sql). -#}
-- noqa: disable=LT02
{%- set windows_sql %}
    with

    touched as (
        {#- Each touched meter-day with its first touched hour and the end of its last (null on a
            full build: the whole day). #}
        {%- if is_incremental() %}
            select
                device_id,
                reading_date,
                if(count(usage_hour_at) = count(*), min(usage_hour_at)) as first_touched_hour_at,
                if(count(usage_hour_at) = count(*), max(usage_hour_at) + interval '1' hour) as touched_end_at
            from ({{ touched_hours_sql }})
            group by device_id, reading_date
        {%- else %}
            select
                device_id,
                reading_date,
                cast(null as timestamp(6) with time zone) as first_touched_hour_at,
                cast(null as timestamp(6) with time zone) as touched_end_at
            from {{ ref('int_device_days_aggregated') }}
        {%- endif %}
    ),

    appended as (
        {#- The meters whose readings since the watermark follow every reading landed before on
            their days, and are neither zeros nor corrections: they end the day's last zero run
            without changing it, so no earlier reading's rule changes and their windows are not
            widened back (unless the day used no energy before them: then the day's maximum can
            turn its zero runs). A local day lasts at most 25 hours, so a landed reading 26 hours
            after the first new one is on another day. #}
        {%- if is_incremental() and new_readings_range[0] %}
            select new.device_id
            from (
                select
                    device_id,
                    min(reading_at) as first_new_reading_at
                from {{ ref('stg_telemetry_messages') }}
                where batch_id > {{ watermark }} and reject_reason is null
                group by device_id
                having not bool_or(coalesce(energy_kwh <= 0, true) or is_correction)
            ) as new
            left join {{ ref('stg_telemetry_messages') }} as landed
                on
                    new.device_id = landed.device_id
                    and landed.batch_id <= {{ watermark }}
                    and landed.reading_at >= timestamp '{{ new_readings_range[0] }}'
                    and landed.reading_at < timestamp '{{ new_readings_range[1] }}' + interval '26' hour
                    and landed.reading_at between new.first_new_reading_at
                    and new.first_new_reading_at + interval '26' hour
            group by new.device_id
            having count(landed.device_id) = 0
        {%- else %}
            select cast(null as varchar) as device_id
            where false
        {%- endif %}
    ),

    reading_hours as (
        {#- The hours with readings of the touched days (none needed on a full build). #}
        {%- if is_incremental() %}
            select
                device_id,
                usage_date,
                usage_hour_at,
                max_energy_kwh,
                first_reading_at,
                last_reading_at
            from {{ ref('int_device_hours_aggregated') }}
            where reading_count > 0 and usage_date in ({{ dates_relation(touched_dates, 'usage_date') }})
        {%- else %}
            select
                cast(null as varchar) as device_id,
                cast(null as date) as usage_date,
                cast(null as timestamp(6) with time zone) as usage_hour_at,
                cast(null as double) as max_energy_kwh,
                cast(null as timestamp(6) with time zone) as first_reading_at,
                cast(null as timestamp(6) with time zone) as last_reading_at
            where false
        {%- endif %}
    ),

    windows as (
        {#- From the meter's reading before the touched hours to its reading after them (on the same
            day), widened by a zero run's length (back only when not appended); null for the day's
            edge where there is none. The whole day when the day used no energy outside the touched
            hours: then the day's maximum judges its zero runs, and new energy turns them all. #}
        select
            device_id,
            reading_date,
            if(
                is_day_used,
                reading_before_at - if(is_appended, interval '0' hour, interval '{{ zero_run_hours }}' hour)
            ) as widened_start_at,
            if(is_day_used, reading_after_at + interval '{{ zero_run_hours }}' hour) as widened_end_at,
            touched_end_at
        from (
            select
                touched.device_id,
                touched.reading_date,
                least(
                    max(reading_hours.last_reading_at) filter (
                        where reading_hours.usage_hour_at < touched.first_touched_hour_at
                    ),
                    arbitrary(touched.first_touched_hour_at)
                ) as reading_before_at,
                greatest(
                    min(reading_hours.first_reading_at) filter (where reading_hours.usage_hour_at >= touched.touched_end_at),
                    arbitrary(touched.touched_end_at)
                ) as reading_after_at,
                arbitrary(touched.touched_end_at) as touched_end_at,
                arbitrary(appended.device_id) is not null as is_appended,
                coalesce(
                    max(reading_hours.max_energy_kwh) filter (
                        where reading_hours.usage_hour_at < touched.first_touched_hour_at
                        or reading_hours.usage_hour_at >= touched.touched_end_at
                    ) > 0,
                    false
                ) as is_day_used
            from touched
            left join appended on touched.device_id = appended.device_id
            left join reading_hours
                on touched.device_id = reading_hours.device_id and touched.reading_date = reading_hours.usage_date
            group by touched.device_id, touched.reading_date
        )
    ),

    window_edges as (
        {#- A long gap can reach from before the widened window (or past it) further than the context
            does, so the window runs from the meter's reading at or before its start to the one at or
            after its end: the gap and both its readings are then in it. An hour's first (last)
            reading stands in for its readings before (after) the edge. Null for the day's edge. #}
        select
            windows.device_id,
            windows.reading_date,
            arbitrary(windows.touched_end_at) as touched_end_at,
            max(
                case
                    when reading_hours.last_reading_at <= windows.widened_start_at then reading_hours.last_reading_at
                    when reading_hours.first_reading_at <= windows.widened_start_at then reading_hours.first_reading_at
                end
            ) as window_start_reading_at,
            min(
                case
                    when reading_hours.first_reading_at >= windows.widened_end_at then reading_hours.first_reading_at
                    when reading_hours.last_reading_at >= windows.widened_end_at then reading_hours.last_reading_at
                end
            ) as window_end_reading_at
        from windows
        left join reading_hours
            on windows.device_id = reading_hours.device_id and windows.reading_date = reading_hours.usage_date
        group by windows.device_id, windows.reading_date
    ),

    aggregated as (
        select
            days.device_id,
            days.reading_date,
            days.interval_seconds,
            days.last_reading_at,
            days.max_energy_kwh as day_max_energy_kwh,
            window_edges.window_start_reading_at,
            window_edges.window_end_reading_at,
            window_edges.touched_end_at
        from {{ ref('int_device_days_aggregated') }} as days
        inner join window_edges
            on days.device_id = window_edges.device_id and days.reading_date = window_edges.reading_date
        {%- if is_incremental() %}
            where
                days.reading_date in ({{ dates_relation(touched_dates, 'reading_date') }})
                {%- if passed_before %}
                    {#- A day with only events, on a date the batch's readings have not passed,
                        waits for its readings: a backfill lands a week of logs in its first
                        batch, and the day's grid would be written once now and again with them.
                        Its readings' first batch writes it from the day's start (no reading
                        before them), a later run its tail; a day that gets none, a skipped tail. #}
                    and (days.reading_date < date '{{ passed_before }}' or days.last_reading_at is not null)
                {%- endif %}
        {%- endif %}
    ),

    day_bounds as (
        select
            aggregated.device_id,
            devices.customer_id,
            devices.customer_segment,
            aggregated.reading_date,
            cast(coalesce(aggregated.interval_seconds, {{ default_interval_seconds }}) as bigint) as interval_seconds,
            with_timezone(
                cast(aggregated.reading_date as timestamp(6)), coalesce(devices.timezone, {{ utility_timezone() }})
            ) as day_start_at,
            with_timezone(
                cast(aggregated.reading_date + interval '1' day as timestamp(6)),
                coalesce(devices.timezone, {{ utility_timezone() }})
            ) as day_end_at,
            aggregated.last_reading_at,
            aggregated.day_max_energy_kwh,
            aggregated.window_start_reading_at,
            aggregated.window_end_reading_at,
            aggregated.touched_end_at
        from aggregated
        left join {{ ref('int_devices_located') }} as devices on aggregated.device_id = devices.device_id
    ),

    bounds as (
        select
            *,
            (cast(floor(to_unixtime(day_start_at)) as bigint) / interval_seconds + 1) * interval_seconds as first_end_s,
            {#- The current day's grid ends when the run started, or at the interval of its latest
                reading (which may lie ahead of a reading stamped just before it). -#}
            least(
                cast(floor(to_unixtime(day_end_at)) as bigint),
                greatest(
                    cast(floor(to_unixtime({{ run_loaded_at() }})) as bigint),
                    coalesce({{ nearest_interval_end_s('to_unixtime(last_reading_at)', 'interval_seconds') }}, 0)
                )
            ) as grid_end_s,
            {#- The intervals to re-validate (window_edges), to the day's edge where it has none. A run
                that leaves a backlog stops at the day's last reading or the touched hours' end,
                whichever is later, on the dates its batch's readings have not passed: the next batch
                may extend the day, so a later run writes the tail. #}
            coalesce(window_start_reading_at, day_start_at) as window_start_at,
            coalesce(
                window_end_reading_at,
                {%- if passed_before %}
                    if(
                        reading_date >= date '{{ passed_before }}',
                        greatest(last_reading_at + interval_seconds / 2 * interval '1' second, touched_end_at)
                    ),
                {%- endif %}
                day_end_at
            ) as window_end_at
        from day_bounds
    )

    select * from bounds
{%- endset %}
-- noqa: enable=LT02

with

bounds as (
    select *
    from {{ run_table('windows', windows_sql, enabled=is_incremental()) }} as windows
),

devices as (
    select
        device_id,
        customer_id,
        customer_segment,
        timezone,
        country_code
    from {{ ref('int_devices_located') }}
),

country_holidays as (
    select
        country_code,
        array_agg(holiday_date) as holiday_dates
    from {{ ref('stg_public_holidays') }}
    group by country_code
),

slot_ranges as (
    {#- The first and last interval end of the grid within the window. #}
    select
        device_id,
        customer_id,
        reading_date,
        interval_seconds,
        greatest(
            first_end_s,
            (cast(floor(to_unixtime(window_start_at)) as bigint) / interval_seconds + 1) * interval_seconds
        ) as first_slot_s,
        least(
            grid_end_s,
            cast(floor(to_unixtime(window_end_at)) as bigint) / interval_seconds * interval_seconds
        ) as last_slot_s
    from bounds
),

grid as (
    select
        slot_ranges.device_id,
        slot_ranges.customer_id,
        slot_ranges.reading_date,
        slot_ranges.interval_seconds,
        slots.interval_end_s
    from slot_ranges
    cross join
        unnest(
            sequence(
                slot_ranges.first_slot_s,
                greatest(slot_ranges.last_slot_s, slot_ranges.first_slot_s),
                slot_ranges.interval_seconds
            )
        ) as slots (interval_end_s)
    where slots.interval_end_s <= slot_ranges.last_slot_s
),

context_readings as (
    {#- The meter's readings from vee_context_hours before its window to as long after it. -#}
    select
        bounds.device_id,
        bounds.reading_date,
        bounds.customer_segment,
        bounds.interval_seconds,
        bounds.day_max_energy_kwh,
        to_unixtime(bounds.day_start_at) as day_start_s,
        to_unixtime(bounds.day_end_at) as day_end_s,
        readings.reading_at,
        readings.energy_kwh,
        readings.voltage_v,
        readings.register_kwh,
        to_unixtime(readings.reading_at) as reading_s
    from {{ ref('stg_telemetry_raw') }} as readings
    inner join bounds
        on
            readings.device_id = bounds.device_id
            and {{ within_window('readings.reading_at', 'bounds.window_start_at', 'bounds.window_end_at', context_hours) }}
    {%- if is_incremental() %}
        where {{ in_local_days('readings.reading_at', touched_dates, context_hours + zero_run_hours) }}
    {%- endif %}
),

sequenced as (
    select
        *,
        {{ nearest_interval_end_s('reading_s', 'interval_seconds') }} as interval_end_s,
        {{ is_off_grid('reading_s', 'interval_seconds') }} as is_misaligned,
        register_kwh < lag(register_kwh) over (
            partition by device_id, reading_date order by reading_at
        ) as is_register_rollback,
        {#- The register moved by this much more than the reading's energy since the reading before
            (0 when they agree; after a gap, the energy the register counted in it). -#}
        register_kwh - lag(register_kwh) over (
            partition by device_id, reading_date order by reading_at
        ) - energy_kwh as register_residual_kwh,
        {#- Readings since the last consuming one: a zero run shares its group. -#}
        count_if(energy_kwh > 0) over (
            partition by device_id, reading_date order by reading_at
            rows between unbounded preceding and current row
        ) as consumption_group
    from context_readings
),

spike_references as (
    {#- The median of the meter's daily maxima over the days before (a daily maximum of 96
        intervals is about the meter's p99). -#}
    select
        bounds.device_id,
        bounds.reading_date,
        element_at(
            array_sort(array_agg(history.max_energy_kwh)), cast((count(*) + 1) / 2 as integer)
        ) as reference_max_energy_kwh
    from bounds
    inner join {{ ref('int_device_days_aggregated') }} as history
        on
            bounds.device_id = history.device_id
            and history.reading_date >= bounds.reading_date - interval '{{ reference_days }}' day
            and bounds.reading_date > history.reading_date
    where
        history.max_energy_kwh is not null
        {%- if is_incremental() %}
            and history.reading_date >= date '{{ touched_dates[0] if touched_dates else "1970-01-01" }}'
            - interval '{{ reference_days }}' day
        {%- endif %}
    group by bounds.device_id, bounds.reading_date
),

zero_runs as (
    select
        *,
        energy_kwh = 0
        and count_if(energy_kwh = 0) over (
            partition by device_id, reading_date, consumption_group
        ) * interval_seconds >= {{ var('vee_zero_run_min_hours') }} * 3600 as is_in_zero_run
    from sequenced
),

checked as (
    select
        zero_runs.*,
        zero_runs.is_in_zero_run
        and coalesce(spike_references.reference_max_energy_kwh, zero_runs.day_max_energy_kwh) > 0
            as is_zero_run,
        zero_runs.energy_kwh > {{ var('vee_spike_multiple') }} * spike_references.reference_max_energy_kwh
        or zero_runs.energy_kwh > zero_runs.interval_seconds / 3600.0 * case zero_runs.customer_segment
            when 'residential' then {{ var('vee_max_kw_residential') }}
            when 'commercial' then {{ var('vee_max_kw_commercial') }}
            when 'small_industrial' then {{ var('vee_max_kw_small_industrial') }}
        end as is_spike,
        zero_runs.voltage_v not between {{ var('en50160_min_voltage_v') }} and {{ var('en50160_max_voltage_v') }}
            as is_voltage_out_of_range
    from zero_runs
    left join spike_references
        on
            zero_runs.device_id = spike_references.device_id
            and zero_runs.reading_date = spike_references.reading_date
),

interval_readings as (
    {#- Every interval with a reading in the context; the grid keeps the day's. -#}
    select
        device_id,
        reading_date,
        interval_end_s,
        arbitrary(interval_seconds) as interval_seconds,
        arbitrary(day_start_s) as day_start_s,
        arbitrary(day_end_s) as day_end_s,
        count(*) as reading_count,
        max(reading_at) as reading_at,
        sum(energy_kwh) as energy_kwh,
        max_by(voltage_v, reading_at) as voltage_v,
        max_by(register_kwh, reading_at) as register_kwh,
        bool_or(is_misaligned) as is_misaligned,
        bool_or(is_register_rollback) as is_register_rollback,
        bool_or(abs(register_residual_kwh) > {{ var('vee_register_tolerance_kwh') }}) as is_register_mismatch,
        bool_or(is_zero_run) as is_zero_run,
        bool_or(is_spike) as is_spike,
        bool_or(is_voltage_out_of_range) as is_voltage_out_of_range
    from checked
    group by device_id, reading_date, interval_end_s
),

negative_intervals as (
    {#- Staging rejects a negative reading (OUT_OF_RANGE); the interval it was meant for is named. -#}
    select distinct
        bounds.device_id,
        bounds.reading_date,
        {{ nearest_interval_end_s('to_unixtime(rejected.reading_at)', 'bounds.interval_seconds') }} as interval_end_s
    from {{ ref('stg_telemetry_rejected') }} as rejected
    inner join bounds
        on
            rejected.device_id = bounds.device_id
            and {{ within_window('rejected.reading_at', 'bounds.window_start_at', 'bounds.window_end_at', context_hours) }}
    where
        rejected.reject_reason = 'OUT_OF_RANGE' and rejected.energy_kwh < 0
        {%- if is_incremental() %}
            and {{ in_local_days('rejected.reading_at', touched_dates, context_hours + zero_run_hours) }}
        {%- endif %}
),

interval_sequence as (
    select
        device_id,
        reading_date,
        interval_seconds,
        day_start_s,
        day_end_s,
        interval_end_s as previous_end_s,
        energy_kwh as previous_energy_kwh,
        register_kwh as previous_register_kwh,
        lead(interval_end_s) over (partition by device_id, reading_date order by interval_end_s) as next_end_s,
        lead(energy_kwh) over (partition by device_id, reading_date order by interval_end_s) as next_energy_kwh,
        lead(register_kwh) over (partition by device_id, reading_date order by interval_end_s) as next_register_kwh
    from interval_readings
),

gaps as (
    {#- Runs of missing intervals between two intervals with readings: up to the longest gap
        that is interpolated, or longer when the day holds all of the gap's intervals (the
        profile is the day's). #}
    select
        *,
        (next_end_s - previous_end_s) / interval_seconds - 1 as missing_count,
        next_end_s - previous_end_s - interval_seconds > {{ max_gap_s }} as is_long_gap,
        {#- What the register counted over the gap: its move to the next reading, less that reading's energy. #}
        next_register_kwh - previous_register_kwh - next_energy_kwh as register_gap_kwh
    from interval_sequence
    where
        next_end_s - previous_end_s > interval_seconds
        and (
            next_end_s - previous_end_s - interval_seconds <= {{ max_gap_s }}
            or (previous_end_s >= day_start_s and next_end_s - interval_seconds <= day_end_s)
        )
),

gap_slots as (
    select
        gaps.*,
        coalesce(gaps.register_gap_kwh >= -{{ var('vee_register_tolerance_kwh') }}, false) as is_register_counted,
        slots.interval_end_s,
        devices.customer_segment,
        devices.country_code,
        {#- The local hour a reading for this interval would count in (as in int_device_hours_aggregated). -#}
        hour(
            at_timezone(from_unixtime(slots.interval_end_s - 1), coalesce(devices.timezone, {{ utility_timezone() }}))
        ) as local_hour,
        {#- The straight line between the readings either side, at this interval. #}
        gaps.previous_energy_kwh + (gaps.next_energy_kwh - gaps.previous_energy_kwh)
        * (slots.interval_end_s - gaps.previous_end_s) / (gaps.next_end_s - gaps.previous_end_s)
            as interpolated_kwh
    from gaps
    left join devices on gaps.device_id = devices.device_id
    cross join
        unnest(
            sequence(
                gaps.previous_end_s + gaps.interval_seconds,
                gaps.next_end_s - gaps.interval_seconds,
                gaps.interval_seconds
            )
        ) as slots (interval_end_s)
),

long_gap_days as (
    {#- The meter-days that can hold a gap longer than vee_estimation_max_gap_hours: that many hours
        without a reading before the day's first reading hour or between two reading hours. A
        superset read from the hours, so the readings' chain above is not computed twice. #}
    select
        device_id,
        usage_date as reading_date
    from (
        select
            device_id,
            usage_date,
            local_hour,
            usage_hour_at,
            lag(usage_hour_at) over (partition by device_id, usage_date order by usage_hour_at) as previous_hour_at
        from {{ ref('int_device_hours_aggregated') }}
        where
            reading_count > 0
            {%- if is_incremental() %}
                and usage_date in ({{ dates_relation(touched_dates, 'usage_date') }})
                and usage_hour_at >= timestamp '{{ touched_dates[0] if touched_dates else "1970-01-01" }} 00:00:00 UTC'
                - interval '1' day
            {%- endif %}
    )
    group by device_id, usage_date
    having
        bool_or(
            coalesce(
                usage_hour_at - previous_hour_at >= interval '{{ max_gap_s // 3600 }}' hour,
                local_hour >= {{ max_gap_s // 3600 }}
            )
        )
),

profile_dates as (
    {#- For each meter-day that can hold a long gap, its days of the same day type in the
        vee_profile_days before: working days, or rest days (Saturday, Sunday and the public
        holidays of the meter's country). #}
    select
        long_gap_days.device_id,
        long_gap_days.reading_date,
        devices.customer_segment,
        devices.country_code,
        earlier.profile_date
    from long_gap_days
    left join devices on long_gap_days.device_id = devices.device_id
    left join country_holidays on devices.country_code = country_holidays.country_code
    cross join
        unnest(
            sequence(
                long_gap_days.reading_date - interval '{{ profile_days }}' day,
                long_gap_days.reading_date - interval '1' day
            )
        ) as earlier (profile_date)
    where
        {{ is_rest_day('earlier.profile_date', 'country_holidays.holiday_dates') }}
        = {{ is_rest_day('long_gap_days.reading_date', 'country_holidays.holiday_dates') }}
),

profiles as (
    {#- The meter's mean energy per reading in each local hour over its profile dates. #}
    select
        profile_dates.device_id,
        profile_dates.reading_date,
        history.local_hour,
        sum(history.total_energy_kwh) / sum(history.reading_count) as profile_kwh
    from profile_dates
    inner join {{ ref('int_device_hours_aggregated') }} as history
        on profile_dates.device_id = history.device_id and profile_dates.profile_date = history.usage_date
    where
        history.reading_count > 0
        {%- if is_incremental() %}
            and history.usage_hour_at >= timestamp '{{ touched_dates[0] if touched_dates else "1970-01-01" }} 00:00:00 UTC'
            - interval '{{ profile_days + 1 }}' day
        {%- endif %}
    group by profile_dates.device_id, profile_dates.reading_date, history.local_hour
),

segment_profiles as (
    {#- The fallback: the segment's energy per second of reading in each local hour over the same
        dates (chosen by the calendar of the gap meter's country). #}
    select
        segment_dates.customer_segment,
        segment_dates.country_code,
        segment_dates.reading_date,
        history.local_hour,
        sum(history.total_energy_kwh) / sum(history.reading_seconds) as energy_kwh_per_second
    from (
        select distinct
            customer_segment,
            country_code,
            reading_date,
            profile_date
        from profile_dates
    ) as segment_dates
    inner join {{ ref('int_segment_hours_aggregated') }} as history
        on
            segment_dates.customer_segment = history.customer_segment
            and segment_dates.profile_date = history.usage_date
    group by segment_dates.customer_segment, segment_dates.country_code, segment_dates.reading_date, history.local_hour
),

profiled as (
    select
        gap_slots.*,
        profiles.profile_kwh,
        {#- The segment's mean energy per interval of this meter's length. #}
        segment_profiles.energy_kwh_per_second * gap_slots.interval_seconds as segment_profile_kwh,
        count(profiles.profile_kwh) over gap = gap_slots.missing_count as is_profiled,
        sum(profiles.profile_kwh) over gap as profile_total_kwh,
        count(segment_profiles.energy_kwh_per_second) over gap = gap_slots.missing_count as is_segment_profiled,
        sum(segment_profiles.energy_kwh_per_second) over gap * gap_slots.interval_seconds as segment_profile_total_kwh
    from gap_slots
    left join profiles
        on
            gap_slots.is_long_gap
            and gap_slots.device_id = profiles.device_id
            and gap_slots.reading_date = profiles.reading_date
            and gap_slots.local_hour = profiles.local_hour
    left join segment_profiles
        on
            gap_slots.is_long_gap
            and gap_slots.customer_segment = segment_profiles.customer_segment
            and gap_slots.country_code is not distinct from segment_profiles.country_code
            and gap_slots.reading_date = segment_profiles.reading_date
            and gap_slots.local_hour = segment_profiles.local_hour
    window gap as (partition by gap_slots.device_id, gap_slots.reading_date, gap_slots.previous_end_s)
),

methods as (
    {#- A long gap follows the meter's own profile, else its segment's, else (with a register
        count) the line; a short gap follows the line. #}
    select
        *,
        case
            when is_long_gap and is_profiled then if(is_register_counted, 'REGISTER_PROFILE', 'PROFILE')
            when is_long_gap and is_segment_profiled
                then if(is_register_counted, 'REGISTER_SEGMENT_PROFILE', 'SEGMENT_PROFILE')
            when is_register_counted then 'REGISTER_SPLIT'
            when not is_long_gap then 'LINEAR_INTERPOLATION'
        end as estimation_method,
        {#- What the line between the readings either side sums to over the gap. #}
        missing_count * (previous_energy_kwh + next_energy_kwh) / 2 as line_total_kwh
    from profiled
),

estimates as (
    {#- A register method takes its shape's share of what the register counted (an even share
        when the shape sums to 0), so the gap sums to exactly that. #}
    select
        device_id,
        reading_date,
        interval_end_s,
        estimation_method,
        case estimation_method
            when 'REGISTER_PROFILE'
                then greatest(register_gap_kwh, 0)
                    * coalesce(profile_kwh / nullif(profile_total_kwh, 0), 1e0 / missing_count)
            when 'REGISTER_SEGMENT_PROFILE'
                then greatest(register_gap_kwh, 0)
                    * coalesce(segment_profile_kwh / nullif(segment_profile_total_kwh, 0), 1e0 / missing_count)
            when 'REGISTER_SPLIT'
                then greatest(register_gap_kwh, 0)
                    * coalesce(interpolated_kwh / nullif(line_total_kwh, 0), 1e0 / missing_count)
            when 'PROFILE' then profile_kwh
            when 'SEGMENT_PROFILE' then segment_profile_kwh
            when 'LINEAR_INTERPOLATION' then interpolated_kwh
        end as estimated_energy_kwh
    from methods
),

validated as (
    select
        grid.device_id,
        grid.customer_id,
        grid.reading_date,
        grid.interval_end_s,
        grid.interval_seconds,
        coalesce(interval_readings.reading_count, 0) as reading_count,
        interval_readings.reading_at,
        coalesce(interval_readings.energy_kwh, estimates.estimated_energy_kwh) as energy_kwh,
        estimates.estimation_method,
        interval_readings.voltage_v,
        interval_readings.register_kwh,
        {#- concat_ws skips the nulls: a third of the CPU of an array filtered by a lambda. -#}
        nullif(
            concat_ws(
                ',',
                if(interval_readings.reading_count is null, 'GAP'),
                if(negative_intervals.interval_end_s is not null, 'NEGATIVE_ENERGY'),
                if(interval_readings.is_spike, 'SPIKE'),
                if(interval_readings.is_zero_run, 'ZERO_RUN'),
                if(interval_readings.is_register_rollback, 'REGISTER_ROLLBACK'),
                if(interval_readings.is_register_mismatch, 'REGISTER_MISMATCH'),
                if(interval_readings.is_voltage_out_of_range, 'VOLTAGE_OUT_OF_RANGE'),
                if(interval_readings.is_misaligned, 'MISALIGNED')
            ),
            ''
        ) as rule_codes
    from grid
    left join interval_readings
        on
            grid.device_id = interval_readings.device_id
            and grid.reading_date = interval_readings.reading_date
            and grid.interval_end_s = interval_readings.interval_end_s
    left join estimates
        on
            grid.device_id = estimates.device_id
            and grid.reading_date = estimates.reading_date
            and grid.interval_end_s = estimates.interval_end_s
    left join negative_intervals
        on
            grid.device_id = negative_intervals.device_id
            and grid.reading_date = negative_intervals.reading_date
            and grid.interval_end_s = negative_intervals.interval_end_s
)

select
    device_id,
    customer_id,
    cast(from_unixtime(interval_end_s, 'UTC') as timestamp(6) with time zone) as interval_end_at,
    reading_date,
    cast(interval_seconds / 60 as integer) as interval_minutes,
    reading_count,
    reading_at,
    energy_kwh,
    estimation_method is not null as is_estimated,
    estimation_method,
    voltage_v,
    register_kwh,
    case
        when reading_count = 0 then 'MISSING'
        when rule_codes is not null then 'SUSPECT'
        else 'VALID'
    end as validation_status,
    rule_codes,
    cast({{ pipeline_batch_id() }} as bigint) as batch_id,
    {{ run_loaded_at() }} as validated_at
from validated
