"""Apache Superset's configuration, the same file in both modes: native mode points
SUPERSET_CONFIG_PATH at it, compose mounts it as /app/pythonpath/superset_config.py. What differs
(hosts, ports, credentials) comes from the environment, as in trino-config/."""

import os

from sqlalchemy.engine import URL


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: ./lakehouse setup or up writes it to .env with the other secrets")
    return value


APP_NAME = "Smart meter lakehouse"
SECRET_KEY = _required("SUPERSET_SECRET_KEY")

# Superset's own metadata: its database and role in the stack's PostgreSQL (postgres-init/05-roles.sql
# makes the role, a non-superuser; 07-superset.sql the database it owns).
SQLALCHEMY_DATABASE_URI = URL.create(
    "postgresql+psycopg2",
    username=os.environ.get("POSTGRES_SUPERSET_USER", "lakehouse_superset"),
    password=_required("POSTGRES_SUPERSET_PASSWORD"),
    host=os.environ.get("POSTGRES_HOST", "127.0.0.1"),
    port=int(os.environ.get("POSTGRES_PORT", "5432")),
    database=os.environ.get("SUPERSET_DB", "superset"),
).render_as_string(hide_password=False)
SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

FEATURE_FLAGS = {
    # Render every chart of a dashboard, not only those scrolled into view: screenshots and the
    # browser tests see them all.
    "DASHBOARD_VIRTUALIZATION": False,
}

# Chart results are cached for five minutes (the pipeline refreshes the marts every ten);
# a dashboard's "Force refresh" bypasses the cache.
DATA_CACHE_CONFIG = {
    "CACHE_TYPE": "FileSystemCache",
    "CACHE_DIR": os.path.join(os.environ.get("SUPERSET_HOME", "/app/superset_home"), "cache"),
    "CACHE_DEFAULT_TIMEOUT": 300,
    "CACHE_KEY_PREFIX": "lakehouse_data_",
}

# Superset's default Content-Security-Policy less every third-party origin. Its stock pages load a
# telemetry pixel from apachesuperset.gateway.scarf.sh (and allow map tiles and web fonts from
# elsewhere): a page's load event then waits for that request, however long an unreachable
# internet takes to fail. The browser needs nothing but this server.
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
