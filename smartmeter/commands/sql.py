"""`./lakehouse sql "QUERY"`: one Trino statement, printed as a table."""

import sys

NAME = "sql"
HELP = "run one Trino statement and print the result as a table"


def add_arguments(parser) -> None:
    parser.add_argument("query")


def run(args, settings) -> int:
    from trino.exceptions import TrinoQueryError

    from smartmeter.trino_sql import format_table, query

    try:
        columns, rows = query(settings, args.query)
    except TrinoQueryError as exc:
        print(f"Query failed: {exc.error_name}: {exc.message}", file=sys.stderr)
        return 1
    print(format_table(columns, rows) if columns else "OK")
    return 0
