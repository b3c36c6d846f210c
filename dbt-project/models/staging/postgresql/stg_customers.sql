select
    customer_id,
    customer_name,
    segment as customer_segment,
    region,
    tariff_id,
    {{ customer_timezone('timezone') }} as timezone,
    created_at
from {{ source('postgresql', 'customers') }}
