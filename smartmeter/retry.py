"""Retrying connections to the stack's services, and the error users see when they stay down."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from smartmeter.errors import LakehouseError

T = TypeVar("T")

START_COMMAND = "./initial-setup.sh --native (or ./lakehouse up)"


class ServiceUnavailable(LakehouseError):
    """A service could not be reached after retrying; the message says which and how to fix it."""


def with_retries(
    action: Callable[[], T], *, service: str, address: str, attempts: int, backoff_s: float,
    retry_on: tuple[type[BaseException], ...],
) -> T:
    """Run `action`, retrying with exponential backoff; raise ServiceUnavailable at the end."""

    def report(state: RetryCallState) -> None:
        print(f"  {service} at {address} not reachable (attempt {state.attempt_number}/{attempts}), "
              f"retrying in {state.upcoming_sleep:.1f}s...", file=sys.stderr)

    retrying = Retrying(
        stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=backoff_s), retry=retry_if_exception_type(retry_on),
        before_sleep=report, reraise=True,
    )
    try:
        return retrying(action)
    except retry_on as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceUnavailable(
            f"cannot reach {service} at {address} after {attempts} attempt(s): {reason}\n"
            f"Is it running? Start the stack with {START_COMMAND}."
        ) from exc
