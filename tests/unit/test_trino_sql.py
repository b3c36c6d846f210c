"""smartmeter.trino_sql without a Trino: what users see when it is down, and the shared table format."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from smartmeter.config import load_settings
from smartmeter.errors import LakehouseError
from smartmeter.pipeline import maintenance
from smartmeter.trino_sql import format_table


@pytest.fixture()
def unreachable_settings():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    return dataclasses.replace(load_settings(), trino_host="127.0.0.1", trino_port=free_port)


class _NoLock:
    def __init__(self, *_args) -> None:
        self.held = False

    def acquire(self, progress) -> None:
        self.held = True

    def release(self) -> None:
        self.held = False


def test_maintenance_reports_an_unreachable_trino_once(monkeypatch, unreachable_settings):
    locks = []
    monkeypatch.setattr(maintenance, "WriterLock", lambda *args: locks.append(_NoLock(*args)) or locks[-1])
    with pytest.raises(LakehouseError) as raised:
        maintenance.maintain(unreachable_settings, maintenance.parse_args([], unreachable_settings))
    message = str(raised.value)
    assert message.count(unreachable_settings.trino_url) == 1 and "Cannot reach Trino" in message, message
    assert not locks[0].held, "the write lock is released on the way out"


def test_format_table_with_a_footer_in_place_of_the_row_count():
    text = format_table(["table", "files"], [("a", 3), ("bb", None)], footer="2 table(s)")
    assert text.splitlines() == ["table | files", "-------+-------", "a     | 3", "bb    | NULL", "2 table(s)"]


def test_maintenance_reports_print_through_the_shared_table_format():
    reports = [maintenance.TableReport("iceberg.staging.t", files_before=4, files_after=1, snapshots_before=3,
                                       snapshots_after=1, seconds=1.25)]
    lines = maintenance.format_reports(reports).splitlines()
    assert [cell.strip() for cell in lines[0].split(" | ")][:2] == ["table", "files before"]
    assert [cell.strip() for cell in lines[2].split(" | ")][-2:] == ["1.2", "ok"]
    assert lines[-1] == "1 table(s): data files 4 -> 1"
