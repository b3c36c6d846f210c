select
    country_code,
    holiday_date,
    holiday_name
from {{ source('postgresql', 'public_holidays') }}
