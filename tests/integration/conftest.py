"""Integration tests run against the real native stack; they fail (never skip) without it."""

from __future__ import annotations

import pytest

from smartmeter.native.services import CORE_SERVICES
from smartmeter.native.stack import make_context


@pytest.fixture(scope="session", autouse=True)
def native_stack(settings):
    ctx = make_context(settings, with_java=False)
    unhealthy = [s.name for s in CORE_SERVICES if not s.healthy(ctx)]
    if unhealthy:
        pytest.fail(f"native stack not healthy ({', '.join(unhealthy)}): run ./initial-setup.sh --native or ./lakehouse test")
    return ctx


def pytest_collection_modifyitems(items):
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.integration)
