"""`./lakehouse dbt ARGS`: dbt against the running stack, through the pipeline runner (one writer
at a time, one bounded Kafka batch per writing command)."""

from smartmeter.config import TRINO_DBT_USER
from smartmeter.mode import docker_exec, mode

NAME = "dbt"
# The Trino user this command works as (trino-config/etc/rules.json); cli.py applies it.
TRINO_AS = TRINO_DBT_USER
HELP = "dbt against the stack, e.g. ./lakehouse dbt build (loads one bounded batch)"
PASSTHROUGH = "dbt's arguments"


def run(args, settings) -> int:
    if mode(settings) == "docker":
        return docker_exec("dbt-transformations", "dbt", *args.args)
    from smartmeter.pipeline.cycle import CycleReport, Runner

    result = Runner(settings, "manual").dbt(args.args)
    if isinstance(result, CycleReport):
        print(result.summary())
        if result.total_behind:
            print(f"{result.total_behind:,} message(s) are still waiting in Kafka: ./lakehouse catch-up loads them all")
        return 0 if result.status == "ok" else 1
    return result.returncode
