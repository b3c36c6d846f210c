"""The one way this project talks to Trino from Python, and how results print as a table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from smartmeter.config import Settings
from smartmeter.errors import LakehouseError


def connect(settings: Settings, **kwargs: Any):
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
    # Otherwise REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, when set, replace the certificate (requests#3829).
    session.trust_env = False
    return {"http_scheme": "https", "auth": trino.auth.BasicAuthentication(settings.trino_user, settings.trino_password),
            "http_session": session}


def query(settings: Settings, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of one statement. An unreachable Trino is a LakehouseError that says
    what to do; a failing statement raises trino's TrinoQueryError."""
    from trino.exceptions import TrinoConnectionError

    conn = connect(settings)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        rows = [tuple(r) for r in cur.fetchall()]
        columns = [d[0] for d in cur.description or []]
        return columns, rows
    except (TrinoConnectionError, OSError) as exc:
        raise LakehouseError(f"Cannot reach Trino at {settings.trino_url}. Is the stack up? Check with "
                             "./lakehouse status, start it with ./lakehouse up") from exc
    finally:
        conn.close()


def execute(settings: Settings, sql: str) -> None:
    query(settings, sql)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [["NULL" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "+".join("-" * (w + 2) for w in widths)
    out = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(), line]
    out += [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)
