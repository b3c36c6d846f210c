"""`python -m smartmeter.native.launch NAME`: what supervisord runs for a service. It builds the
service's command and environment (smartmeter/native/services.py) and becomes it (exec), so
supervisord watches the service process itself and no secret is written into its config."""

from __future__ import annotations

import os
import sys

from smartmeter.config import load_settings
from smartmeter.errors import LakehouseError
from smartmeter.native.java import find_java_home
from smartmeter.native.layout import Layout
from smartmeter.native.services import Context, service_named


def main(argv: list[str]) -> int:
    try:
        service = service_named(argv[0])
        ctx = Context(settings=load_settings(), layout=Layout(load_settings().home))
        if service.needs_java:
            ctx.java_home = find_java_home()
        command, env = service.command(ctx), service.environment(ctx)
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
