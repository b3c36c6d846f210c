"""smartmeter.retry: how often an action is tried, how long between tries, and what the user sees."""

from __future__ import annotations

import pytest

from smartmeter.errors import LakehouseError
from smartmeter.retry import ServiceUnavailable, with_retries


def _flaky(failures: int, error: type[BaseException] = ConnectionError):
    calls = []

    def action():
        calls.append(1)
        if len(calls) <= failures:
            raise error(f"refused #{len(calls)}")
        return "connected"

    return action, calls


def test_retries_until_the_action_succeeds_with_doubling_waits(capsys):
    action, calls = _flaky(2)
    assert with_retries(action, service="Kafka", address="h:1", attempts=3, backoff_s=0.01, retry_on=(ConnectionError,)) == "connected"
    assert len(calls) == 3
    err = capsys.readouterr().err.splitlines()
    assert err == ["  Kafka at h:1 not reachable (attempt 1/3), retrying in 0.0s...",
                   "  Kafka at h:1 not reachable (attempt 2/3), retrying in 0.0s..."]


def test_gives_up_after_the_last_attempt_with_a_lakehouse_error():
    action, calls = _flaky(5)
    with pytest.raises(ServiceUnavailable) as raised:
        with_retries(action, service="PostgreSQL", address="h:2", attempts=2, backoff_s=0.001, retry_on=(ConnectionError,))
    assert len(calls) == 2
    assert isinstance(raised.value, LakehouseError)
    assert str(raised.value).startswith("cannot reach PostgreSQL at h:2 after 2 attempt(s): refused #2\n")


def test_other_errors_are_not_retried():
    action, calls = _flaky(1, error=ValueError)
    with pytest.raises(ValueError):
        with_retries(action, service="Kafka", address="h:1", attempts=3, backoff_s=0.001, retry_on=(ConnectionError,))
    assert len(calls) == 1
