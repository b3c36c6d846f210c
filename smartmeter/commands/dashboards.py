"""`./lakehouse dashboards import|bundle`: the dashboards as code (dashboards/, smartmeter/dashboards.py)."""

from pathlib import Path

from smartmeter.mode import mode
from smartmeter.native.layout import Layout

NAME = "dashboards"
HELP = "import: load dashboards/ into the running Superset (updates in place); bundle FILE: write the zip"


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=("import", "bundle"))
    parser.add_argument("file", nargs="?", type=Path, help="bundle: the zip to write")


def run(args, settings) -> int:
    from smartmeter import dashboards
    from smartmeter.errors import LakehouseError

    if args.action == "bundle":
        if args.file is None:
            raise LakehouseError("bundle needs a file name, e.g. ./lakehouse dashboards bundle dashboards.zip")
        print(dashboards.write_bundle(args.file, _environment(settings)))
        return 0
    if mode(settings) == "docker":
        from smartmeter import compose

        return compose.run_once("superset-init")
    if not dashboards.healthy(settings):
        raise LakehouseError(f"Superset does not answer on port {settings.superset_port}: ./lakehouse up")
    dashboards.import_dashboards(Layout(settings.home), _environment(settings))
    return 0


def _environment(settings) -> dict[str, str]:
    from smartmeter.native.services import Superset
    from smartmeter.native.stack import make_context

    return Superset().environment(make_context(settings, with_java=False))
