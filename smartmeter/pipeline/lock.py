"""One writer at a time: a PostgreSQL advisory lock that every process writing the lakehouse's
Iceberg tables holds for its whole run (the loop, `./lakehouse dbt`, catch-up, maintenance, and
the compose container's `dbt`). PostgreSQL releases it when the holder's connection ends, so a
killed writer never leaves it behind. The holder names itself in application_name, which is
how a waiting writer can say who it waits for.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from smartmeter.config import Settings
from smartmeter.errors import LakehouseError
from smartmeter.pipeline.store import connect

APPLICATION_PREFIX = "lakehouse-writer"
LOCK_CLASS = 7355
"""First key of the two-key advisory lock; the second is a hash of the scope (DBT_SCHEMA_SUFFIX)."""


class WriterLock:
    def __init__(self, settings: Settings, purpose: str) -> None:
        self.settings = settings
        self.purpose = purpose
        self.scope = settings.dbt_schema_suffix
        self._conn = None

    @property
    def _key(self) -> str:
        return f"{APPLICATION_PREFIX}:{self.scope}"

    def holder(self) -> str | None:
        """Who holds the lock now (their application_name), if anyone."""
        with self._conn.cursor() as cur:
            cur.execute(
                "select a.application_name, a.backend_start from pg_locks l join pg_stat_activity a on a.pid = l.pid "
                "where l.locktype = 'advisory' and l.granted and l.classid = %s::oid and l.objid = hashtext(%s)::oid "
                "and l.objsubid = 2 and a.pid <> pg_backend_pid()", (LOCK_CLASS, self._key),
            )
            row = cur.fetchone()
        return f"{row[0]} (since {row[1]:%Y-%m-%d %H:%M:%S %Z})" if row else None

    def acquire(self, *, wait: bool = True, timeout_s: float | None = None,
                progress: Callable[[str], None] = print) -> None:
        self._conn = connect(self.settings)
        name = f"{APPLICATION_PREFIX} {self.purpose} pid={os.getpid()} host={socket.gethostname()}"
        with self._conn.cursor() as cur:
            cur.execute("select set_config('application_name', %s, false)", (name[:63],))
        started = time.monotonic()
        announced = False
        while True:
            with self._conn.cursor() as cur:
                cur.execute("select pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, self._key))
                if cur.fetchone()[0]:
                    return
            holder = self.holder() or "another writer"
            if not wait:
                self.release()
                raise LakehouseError(
                    f"another process is writing the lakehouse: {holder}. Only one writer may run at a time "
                    "(two would load the same Kafka offsets twice). Wait for it to finish, or stop it "
                    "(the loop: ./lakehouse stop-service pipeline)."
                )
            if not announced:
                progress(f"waiting for the lakehouse write lock, held by {holder} ...")
                announced = True
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                self.release()
                raise LakehouseError(f"gave up after {timeout_s:.0f}s waiting for the write lock held by {holder}")
            time.sleep(1)

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> WriterLock:
        if self._conn is None:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
