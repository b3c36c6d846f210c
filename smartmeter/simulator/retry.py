"""Retrying connections to the stack's services, and the error users see when they stay down."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ServiceUnavailable(RuntimeError):
    """A service could not be reached after retrying; the message says which and how to fix it."""


START_COMMAND = "./initial-setup.sh --native (or ./lakehouse up)"


def with_retries(
    action: Callable[[], T], *, service: str, address: str, attempts: int, backoff_s: float,
    retry_on: tuple[type[BaseException], ...],
) -> T:
    """Run `action`, retrying with exponential backoff; raise ServiceUnavailable at the end."""
    delay_s = backoff_s
    for attempt in range(1, attempts):
        try:
            return action()
        except retry_on:
            print(f"  {service} at {address} not reachable (attempt {attempt}/{attempts}), "
                  f"retrying in {delay_s:.1f}s...", file=sys.stderr)
            time.sleep(delay_s)
            delay_s *= 2
    try:
        return action()
    except retry_on as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceUnavailable(
            f"cannot reach {service} at {address} after {attempts} attempt(s): {reason}\n"
            f"Is it running? Start the stack with {START_COMMAND}."
        ) from exc
