-- Master data for the lakehouse: tariffs with time-of-use periods, customers and devices.
-- Run by the postgres image on first start (docker-entrypoint-initdb.d) and by the native
-- runner with psql, in the POSTGRES_DB database, so it must stay plain SQL plus psql commands.

CREATE TABLE IF NOT EXISTS tariffs (
    tariff_id                 text PRIMARY KEY,
    tariff_name               text        NOT NULL,
    currency                  char(3)     NOT NULL DEFAULT 'EUR',
    standing_charge_per_day   numeric(10, 4) NOT NULL DEFAULT 0
);

-- Each tariff covers every hour of every day type it has exactly once: [start_hour, end_hour)
-- of the customer's local clock. A tariff needs WEEKDAY and WEEKEND (or SATURDAY and SUNDAY);
-- a local day without periods of its own type falls back: HOLIDAY -> SUNDAY -> WEEKEND,
-- SATURDAY -> WEEKEND, SUNDAY -> WEEKEND (customer_billing_daily).
CREATE TABLE IF NOT EXISTS tariff_periods (
    tariff_id       text     NOT NULL REFERENCES tariffs (tariff_id),
    day_type        text     NOT NULL,
    start_hour      smallint NOT NULL CHECK (start_hour BETWEEN 0 AND 23),
    end_hour        smallint NOT NULL CHECK (end_hour BETWEEN 1 AND 24),
    period_name     text     NOT NULL CHECK (period_name IN ('PEAK', 'SHOULDER', 'OFF_PEAK')),
    price_per_kwh   numeric(10, 5) NOT NULL CHECK (price_per_kwh >= 0),
    PRIMARY KEY (tariff_id, day_type, start_hour),
    CHECK (end_hour > start_hour)
);
-- Dropped and added again so that applying this file upgrades a database from before day types.
ALTER TABLE tariff_periods DROP CONSTRAINT IF EXISTS tariff_periods_day_type_check;
ALTER TABLE tariff_periods ADD CONSTRAINT tariff_periods_day_type_check
    CHECK (day_type IN ('WEEKDAY', 'WEEKEND', 'SATURDAY', 'SUNDAY', 'HOLIDAY'));
-- An hour in two periods of one tariff and day type would be billed twice, so periods must not
-- overlap. btree_gist lets the exclusion compare the text keys with =; it ships with PostgreSQL
-- (contrib). Added apart, like the check above, so that applying this file upgrades a database.
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE tariff_periods DROP CONSTRAINT IF EXISTS tariff_periods_no_overlap;
ALTER TABLE tariff_periods ADD CONSTRAINT tariff_periods_no_overlap
    EXCLUDE USING gist (tariff_id WITH =, day_type WITH =, int4range(start_hour, end_hour) WITH &&);

CREATE TABLE IF NOT EXISTS customers (
    customer_id     text PRIMARY KEY,
    customer_name   text NOT NULL,
    segment         text NOT NULL CHECK (segment IN ('residential', 'commercial', 'small_industrial')),
    region          text NOT NULL,
    tariff_id       text NOT NULL REFERENCES tariffs (tariff_id),
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- The customer's own IANA time zone; null means the utility's zone (LAKEHOUSE_TIMEZONE). Local
-- days, hours, day types and holidays of this customer are read in it. The check rejects names
-- PostgreSQL does not know. Added apart so that applying this file again upgrades an older database.
ALTER TABLE customers ADD COLUMN IF NOT EXISTS timezone text
    CHECK (timezone IS NULL OR (timestamptz '2000-01-01 00:00+00' AT TIME ZONE timezone) IS NOT NULL);

-- Which country's public holidays apply in a zone (smartmeter/calendar.py ZONE_COUNTRIES; null:
-- none), and those holidays. Both are written from the `holidays` package by setup and by the
-- simulator (smartmeter/simulator/masterdata.py seed_calendar), for the zones in use.
CREATE TABLE IF NOT EXISTS timezone_countries (
    timezone      text PRIMARY KEY,
    country_code  text CHECK (country_code ~ '^[A-Z]{2}$')
);

CREATE TABLE IF NOT EXISTS public_holidays (
    country_code  text    NOT NULL CHECK (country_code ~ '^[A-Z]{2}$'),
    holiday_date  date    NOT NULL,
    holiday_name  text    NOT NULL,
    PRIMARY KEY (country_code, holiday_date)
);

CREATE TABLE IF NOT EXISTS devices (
    device_id         text PRIMARY KEY,
    customer_id       text NOT NULL REFERENCES customers (customer_id),
    device_model      text NOT NULL,
    firmware_version  text NOT NULL,
    install_date      date NOT NULL,
    is_active         boolean NOT NULL DEFAULT true
);
CREATE INDEX IF NOT EXISTS devices_customer_id_idx ON devices (customer_id);

-- Ground truth written by the simulator's fault injection, to score health rules against.
CREATE TABLE IF NOT EXISTS fault_labels (
    device_id    text        NOT NULL,
    fault_type   text        NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    PRIMARY KEY (device_id, fault_type, started_at)
);
