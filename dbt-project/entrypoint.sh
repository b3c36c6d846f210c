#!/bin/sh
# The dbt container's process: the pipeline loop (smartmeter/pipeline/loop.py), the same one the
# native `pipeline` service runs (built by dbt-project/Dockerfile). DBT_AUTO_RUN=false keeps it
# idle for `docker exec ... dbt ...`.
exec /opt/lakehouse/bin/python -m smartmeter pipeline loop
