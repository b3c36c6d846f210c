"""One module per `./lakehouse` command. Each has NAME, HELP, add_arguments(parser) and
run(args) -> exit code; PASSTHROUGH commands hand their arguments, options included, to another
tool (dbt, the Trino CLI, pytest)."""

from smartmeter.commands import (
    catch_up,
    dashboards,
    dbt,
    down,
    logs,
    maintain,
    pipeline,
    setup,
    sql,
    status,
    stop_service,
    test,
    trino,
    up,
)

COMMANDS = (setup, up, down, status, logs, sql, trino, dbt, catch_up, pipeline, maintain, dashboards, stop_service, test)
