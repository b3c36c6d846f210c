{#- Each meter with its customer, the zone its days are read in and that zone's holiday country (a view). -#}
select
    devices.device_id,
    devices.customer_id,
    devices.install_date,
    devices.is_active,
    customers.customer_segment,
    customers.region,
    customers.tariff_id,
    {{ customer_timezone('customers.timezone') }} as timezone,
    timezone_countries.country_code
from {{ ref('stg_devices') }} as devices
left join {{ ref('stg_customers') }} as customers on devices.customer_id = customers.customer_id
left join {{ ref('stg_timezone_countries') }} as timezone_countries
    on {{ customer_timezone('customers.timezone') }} = timezone_countries.timezone
