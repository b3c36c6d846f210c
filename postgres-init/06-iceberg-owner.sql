-- The Iceberg JDBC catalog's role (05-roles.sql) owns the catalog database and its tables, and
-- nothing else. Idempotent, like 05: it also moves a catalog the admin created to its role.
\getenv iceberg_user POSTGRES_ICEBERG_USER

-- The Iceberg JDBC catalog: its role owns the catalog database and its tables, nothing else.
ALTER DATABASE iceberg_catalog OWNER TO :"iceberg_user";
REVOKE ALL ON DATABASE iceberg_catalog FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE iceberg_catalog TO :"iceberg_user";
\connect iceberg_catalog
ALTER SCHEMA public OWNER TO :"iceberg_user";
ALTER TABLE iceberg_tables OWNER TO :"iceberg_user";
ALTER TABLE iceberg_namespace_properties OWNER TO :"iceberg_user";
