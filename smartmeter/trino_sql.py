"""The one way this project talks to Trino from Python, and how results print as a table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from smartmeter.config import Settings
from smartmeter.errors import LakehouseError

# When set, requests lets these replace a client's own certificate (requests#3829): processes
# that trust only the stack's certificate (dbt, Superset) must not inherit them.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def connect(settings: Settings, **kwargs: Any):
    """A DB-API connection: the only place that turns settings into Trino connection options."""
    import trino

    # trino sets its own loggers to INFO on import (each retry, a keyring notice): quieter here.
    logging.getLogger("trino").setLevel(logging.WARNING)
    return trino.dbapi.connect(
        host=settings.trino_host, port=settings.trino_port, user=settings.trino_user, **auth_kwargs(settings), **kwargs
    )


def auth_kwargs(settings: Settings) -> dict[str, Any]:
    """How every Python client authenticates (TRINO_AUTH): nothing, or the user's password over
    HTTPS, trusting the certificate setup made."""
    if settings.trino_auth != "password":
        return {}
    import requests
    import trino

    session = requests.Session()
    session.verify = str(settings.trino_certificate)
    # Otherwise CA_BUNDLE_VARIABLES, when set, replace the certificate.
    session.trust_env = False
    return {"http_scheme": "https", "auth": trino.auth.BasicAuthentication(settings.trino_user, settings.trino_password),
            "http_session": session}


class TrinoSession:
    """One connection for many statements. An unreachable Trino is a LakehouseError that says what
    to do; a failing statement raises trino's TrinoQueryError."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conn = connect(settings)
        self.last_query_id: str | None = None

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of one statement."""
        from trino.exceptions import TrinoConnectionError

        try:
            cur = self._conn.cursor()
            cur.execute(sql)
            rows = [tuple(r) for r in cur.fetchall()]
        except (TrinoConnectionError, OSError) as exc:
            raise LakehouseError(f"Cannot reach Trino at {self.settings.trino_url}. Is the stack up? Check with "
                                 "./lakehouse status, start it with ./lakehouse up") from exc
        self.last_query_id = cur.query_id
        return [d[0] for d in cur.description or []], rows

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.query(sql)[1]

    def scalar(self, sql: str) -> int:
        return int(self.rows(sql)[0][0])

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TrinoSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def query(settings: Settings, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of one statement, on a connection of its own."""
    with TrinoSession(settings) as trino:
        return trino.query(sql)


def execute(settings: Settings, sql: str) -> None:
    query(settings, sql)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], footer: str | None = None) -> str:
    """Aligned columns under a header; the last line counts the rows unless a footer replaces it."""
    cells = [["NULL" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "+".join("-" * (w + 2) for w in widths)
    out = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(), line]
    out += [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    out.append(footer if footer is not None else f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)
