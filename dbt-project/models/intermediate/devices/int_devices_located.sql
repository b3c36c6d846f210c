{#- Each meter with its customer and the zone its days are read in (a view). -#}
select
    devices.device_id,
    devices.customer_id,
    devices.install_date,
    devices.is_active,
    customers.customer_segment,
    customers.region,
    customers.tariff_id,
    {{ customer_timezone('customers.timezone') }} as timezone
from {{ ref('stg_devices') }} as devices
left join {{ ref('stg_customers') }} as customers on devices.customer_id = customers.customer_id
