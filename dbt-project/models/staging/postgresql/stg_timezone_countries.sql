select
    timezone,
    country_code
from {{ source('postgresql', 'timezone_countries') }}
