select
    device_id,
    customer_id,
    device_model,
    firmware_version,
    install_date,
    is_active
from {{ source('postgresql', 'devices') }}
