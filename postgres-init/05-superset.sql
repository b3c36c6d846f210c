-- Apache Superset's metadata (the dashboards): its own role and database, named by SUPERSET_DB_USER
-- and SUPERSET_DB, with the password SUPERSET_DB_PASSWORD. Run by the postgres image on first
-- start, by native setup, and natively again before Superset starts (a stack set up before the
-- dashboards existed): idempotent, and the password follows the environment.
\getenv superset_db SUPERSET_DB
\getenv superset_db_user SUPERSET_DB_USER
\getenv superset_db_password SUPERSET_DB_PASSWORD

SELECT format('CREATE ROLE %I LOGIN', :'superset_db_user')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'superset_db_user') \gexec
ALTER ROLE :"superset_db_user" WITH LOGIN PASSWORD :'superset_db_password';

SELECT format('CREATE DATABASE %I OWNER %I', :'superset_db', :'superset_db_user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'superset_db') \gexec
