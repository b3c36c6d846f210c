-- Apache Superset's metadata (the dashboards): a database of its own (SUPERSET_DB), owned by its
-- role (POSTGRES_SUPERSET_USER, made with the others in 05-roles.sql), which connects nowhere else.
-- Run as the admin by the postgres image on first start and by both modes on every setup and up:
-- idempotent, like 05 and 06, and it moves a database an earlier version made to this role.
\getenv superset_db SUPERSET_DB
\getenv superset_user POSTGRES_SUPERSET_USER

SELECT format('CREATE DATABASE %I OWNER %I', :'superset_db', :'superset_user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'superset_db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'superset_db', :'superset_user') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'superset_db') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'superset_db', :'superset_user') \gexec

\connect :"superset_db"
-- Superset's tables from before this role (the dashboards' first version had a role `superset`
-- of its own): the role takes over whatever another non-superuser made here. SUPERSET_DB is
-- never a database of the lakehouse (smartmeter/config.py refuses that).
SELECT DISTINCT format('REASSIGN OWNED BY %I TO %I', r.rolname, :'superset_user')
FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
WHERE c.relnamespace = 'public'::regnamespace AND r.rolname <> :'superset_user' AND NOT r.rolsuper \gexec
