select
    device_id,
    fault_type,
    cast(started_at as timestamp(6) with time zone) as started_at,
    cast(ended_at as timestamp(6) with time zone) as ended_at
from {{ source('postgresql', 'fault_labels') }}
