"""One module per `./lakehouse` command. Each has NAME, HELP, run(args, settings) -> exit code and,
when it takes arguments, add_arguments(parser). A PASSTHROUGH command hands its arguments, options
included, to another tool (dbt, the Trino CLI, pytest); PASSTHROUGH is their help text."""

from smartmeter.commands import (
    catch_up,
    dashboards,
    dbt,
    docs,
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

COMMANDS = (setup, up, down, status, logs, sql, trino, dbt, catch_up, pipeline, maintain, docs, dashboards, stop_service, test)
