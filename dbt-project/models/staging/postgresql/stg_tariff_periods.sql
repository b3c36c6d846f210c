select
    tariff_id,
    day_type,
    period_name as tou_period,
    cast(price_per_kwh as double) as price_per_kwh,
    cast(start_hour as integer) as start_hour,
    cast(end_hour as integer) as end_hour
from {{ source('postgresql', 'tariff_periods') }}
