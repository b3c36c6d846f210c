-- Least-privilege roles (README "Security"). Run as the admin (POSTGRES_USER, the bootstrap
-- superuser, used by setup only) in the master-data database (POSTGRES_DB), by the postgres image on first start
-- and by the native runner on every setup and up: idempotent, and it migrates a stack whose
-- objects the admin owns. Names and passwords come from the environment (\getenv, psql 15+);
-- :"name" quotes them as identifiers, :'name' as literals.
\getenv trino_user POSTGRES_TRINO_USER
\getenv trino_password POSTGRES_TRINO_PASSWORD
\getenv iceberg_user POSTGRES_ICEBERG_USER
\getenv iceberg_password POSTGRES_ICEBERG_PASSWORD
\getenv simulator_user POSTGRES_SIMULATOR_USER
\getenv simulator_password POSTGRES_SIMULATOR_PASSWORD
\getenv pipeline_user POSTGRES_PIPELINE_USER
\getenv pipeline_password POSTGRES_PIPELINE_PASSWORD
\getenv superset_user POSTGRES_SUPERSET_USER
\getenv superset_password POSTGRES_SUPERSET_PASSWORD

SELECT format('CREATE ROLE %I', name) FROM unnest(ARRAY[:'trino_user', :'iceberg_user', :'simulator_user', :'pipeline_user', :'superset_user']) AS name
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) \gexec
-- Attributes and passwords are set on every run, so a changed .env takes effect on the next up.
ALTER ROLE :"trino_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'trino_password';
ALTER ROLE :"iceberg_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'iceberg_password';
ALTER ROLE :"simulator_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'simulator_password';
ALTER ROLE :"pipeline_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'pipeline_password';
-- Apache Superset's metadata (the dashboards): it owns its own database (07-superset.sql) and
-- cannot connect to this one; its dashboards read the lakehouse through Trino, as the analyst.
ALTER ROLE :"superset_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'superset_password';

-- The master-data database: only the project's roles connect; nobody but the admin creates.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database()) \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I, %I', current_database(), :'trino_user', :'pipeline_user') \gexec
-- Provisioning stages new rows in temporary tables.
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), :'simulator_user') \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"trino_user", :"simulator_user", :"pipeline_user";

-- Start from nothing on every table, then grant exactly what each role needs.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, :"trino_user", :"simulator_user", :"pipeline_user", :"iceberg_user";
-- Trino's postgresql catalog reads the master data (schema public holds nothing else).
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"trino_user";
-- The simulator reads master data, provisions customers and devices, records fault labels
-- (opens and closes them) and writes the public holidays of the zones it provisions.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"simulator_user";
GRANT INSERT ON customers, devices, fault_labels, timezone_countries, public_holidays TO :"simulator_user";
GRANT UPDATE (ended_at) ON fault_labels TO :"simulator_user";
GRANT UPDATE (country_code) ON timezone_countries TO :"simulator_user";
GRANT UPDATE (holiday_name) ON public_holidays TO :"simulator_user";

-- The pipeline reads the master data's fingerprint (a change triggers a run), and owns its record:
-- the schema and everything in it.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"pipeline_user";
ALTER SCHEMA pipeline OWNER TO :"pipeline_user";
SELECT format('ALTER TABLE pipeline.%I OWNER TO %I', tablename, :'pipeline_user')
FROM pg_tables WHERE schemaname = 'pipeline' \gexec
SELECT format('ALTER SEQUENCE pipeline.%I OWNER TO %I', sequencename, :'pipeline_user')
FROM pg_sequences WHERE schemaname = 'pipeline' AND NOT EXISTS (
    -- Sequences owned by a column follow their table.
    SELECT FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
    WHERE c.relname = sequencename AND d.deptype = 'a' AND c.relnamespace = 'pipeline'::regnamespace) \gexec

-- Trino's postgresql catalog also reads the pipeline's record for the Pipeline dashboard: runs,
-- gaps and state (trino-config/etc/rules.json shows analysts runs, gaps and only the loop's
-- heartbeat of state). Nothing else of the schema, and no writes.
GRANT USAGE ON SCHEMA pipeline TO :"trino_user";
REVOKE ALL ON ALL TABLES IN SCHEMA pipeline FROM :"trino_user";
GRANT SELECT ON pipeline.runs, pipeline.gaps, pipeline.state TO :"trino_user";
