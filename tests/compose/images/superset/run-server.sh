#!/usr/bin/env bash
# The official image's server entrypoint, with its documented variables.
exec gunicorn \
    --bind "${SUPERSET_BIND_ADDRESS:-0.0.0.0}:${SUPERSET_PORT:-8088}" \
    --workers "${SERVER_WORKER_AMOUNT:-1}" \
    --worker-class "${SERVER_WORKER_CLASS:-gthread}" \
    --threads "${SERVER_THREADS_AMOUNT:-20}" \
    --timeout "${GUNICORN_TIMEOUT:-120}" \
    --limit-request-line 0 \
    --limit-request-field_size 0 \
    "${FLASK_APP}"
