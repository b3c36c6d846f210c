-- The seed sample from the use case: 5 customers (CUST-8000..8004), 10 devices (MTR-10000..10009),
-- two meters per customer. Idempotent so it can be re-applied.

INSERT INTO tariffs (tariff_id, tariff_name, currency, standing_charge_per_day) VALUES
    ('TOU-RES', 'Residential time of use', 'EUR', 0.4500),
    ('FLAT-RES', 'Residential flat rate', 'EUR', 0.3800),
    ('TOU-BUS', 'Business time of use', 'EUR', 1.2000)
ON CONFLICT (tariff_id) DO NOTHING;

-- Local hours. TOU-RES prices public holidays at its off-peak rate all day; TOU-BUS has its own
-- Saturday (shops open in the morning), and its Sundays and holidays fall back to WEEKEND.
INSERT INTO tariff_periods (tariff_id, day_type, start_hour, end_hour, period_name, price_per_kwh) VALUES
    ('TOU-RES', 'WEEKDAY', 0, 7, 'OFF_PEAK', 0.15000),
    ('TOU-RES', 'WEEKDAY', 7, 17, 'SHOULDER', 0.25000),
    ('TOU-RES', 'WEEKDAY', 17, 21, 'PEAK', 0.38000),
    ('TOU-RES', 'WEEKDAY', 21, 24, 'SHOULDER', 0.25000),
    ('TOU-RES', 'WEEKEND', 0, 7, 'OFF_PEAK', 0.15000),
    ('TOU-RES', 'WEEKEND', 7, 24, 'SHOULDER', 0.22000),
    ('TOU-RES', 'HOLIDAY', 0, 24, 'OFF_PEAK', 0.15000),
    ('FLAT-RES', 'WEEKDAY', 0, 24, 'SHOULDER', 0.28000),
    ('FLAT-RES', 'WEEKEND', 0, 24, 'SHOULDER', 0.28000),
    ('TOU-BUS', 'WEEKDAY', 0, 8, 'OFF_PEAK', 0.12000),
    ('TOU-BUS', 'WEEKDAY', 8, 18, 'PEAK', 0.30000),
    ('TOU-BUS', 'WEEKDAY', 18, 24, 'SHOULDER', 0.20000),
    ('TOU-BUS', 'SATURDAY', 0, 8, 'OFF_PEAK', 0.12000),
    ('TOU-BUS', 'SATURDAY', 8, 14, 'SHOULDER', 0.20000),
    ('TOU-BUS', 'SATURDAY', 14, 24, 'OFF_PEAK', 0.12000),
    ('TOU-BUS', 'WEEKEND', 0, 24, 'OFF_PEAK', 0.12000)
ON CONFLICT (tariff_id, day_type, start_hour) DO NOTHING;

INSERT INTO customers (customer_id, customer_name, segment, region, tariff_id) VALUES
    ('CUST-8000', 'Alder Household', 'residential', 'NORTH', 'TOU-RES'),
    ('CUST-8001', 'Birch Household', 'residential', 'SOUTH', 'FLAT-RES'),
    ('CUST-8002', 'Cedar Bakery', 'commercial', 'EAST', 'TOU-BUS'),
    ('CUST-8003', 'Dogwood Household', 'residential', 'WEST', 'TOU-RES'),
    ('CUST-8004', 'Elm Metalworks', 'small_industrial', 'NORTH', 'TOU-BUS')
ON CONFLICT (customer_id) DO NOTHING;

INSERT INTO devices (device_id, customer_id, device_model, firmware_version, install_date, is_active)
SELECT
    'MTR-' || (10000 + n),
    'CUST-' || (8000 + n / 2),
    CASE n % 3 WHEN 0 THEN 'LG-E450' WHEN 1 THEN 'KM-AX2' ELSE 'SG-S34' END,
    CASE n % 3 WHEN 0 THEN 'ELX-4.2.1' WHEN 1 THEN 'KMF-2.7' ELSE 'SGX-1.9.3' END,
    DATE '2023-01-15' + n * 30,
    true
FROM generate_series(0, 9) AS n
ON CONFLICT (device_id) DO NOTHING;
