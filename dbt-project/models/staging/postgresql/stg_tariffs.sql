select
    tariff_id,
    tariff_name,
    cast(currency as varchar) as currency,
    cast(standing_charge_per_day as double) as standing_charge_per_day
from {{ source('postgresql', 'tariffs') }}
