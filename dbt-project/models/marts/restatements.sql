{#- The restatement log. Its rows are written by the pipeline after each run that left no backlog
    (smartmeter/pipeline/restatements.py compares the published marts with their last published
    Iceberg snapshot); dbt owns its schema and documentation only, so this select is empty, and a
    full refresh never drops what was logged. -#}
{{ config(incremental_strategy='append', full_refresh=false) }}

select
    cast(null as bigint) as batch_id,
    cast(null as varchar) as mart_name,
    cast(null as varchar) as customer_id,
    cast(null as date) as period_date,
    cast(null as varchar) as tou_period,
    cast(null as varchar) as measure_name,
    cast(null as double) as old_value,
    cast(null as double) as new_value,
    cast(null as varchar) as change_reason,
    cast(null as bigint) as published_snapshot_id,
    cast(null as timestamp(6) with time zone) as published_at,
    cast(null as bigint) as restated_snapshot_id,
    cast(null as timestamp(6) with time zone) as restated_at
where false
