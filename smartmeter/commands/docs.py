"""`./lakehouse docs`: dbt's documentation site (lineage graph, every model and column described),
generated against the running stack and served on DOCS_PORT."""

import json
import shutil
import subprocess
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from smartmeter.config import TRINO_DBT_USER
from smartmeter.errors import LakehouseError
from smartmeter.mode import mode

NAME = "docs"
# The catalog dbt reads is the dbt user's view of the schemas (trino-config/etc/rules.json).
TRINO_AS = TRINO_DBT_USER
HELP = "generate dbt's documentation (lineage, models, columns) and serve it on DOCS_PORT"
# What the static site needs: the page and the two files it loads.
SITE_FILES = ("index.html", "manifest.json", "catalog.json")
# The dbt-transformations container's target directory (docker-compose.yml: DBT_TARGET_PATH).
CONTAINER_TARGET = "/usr/app/state/target"


def add_arguments(parser) -> None:
    parser.add_argument("--port", type=int, help="port to serve on (default: DOCS_PORT, 8580)")
    parser.add_argument("--no-serve", action="store_true", help="generate the site and exit")


def run(args, settings) -> int:
    site = site_directory(settings)
    site.mkdir(parents=True, exist_ok=True)
    print("Generating dbt docs (the catalog reads every table's columns from Trino) ...", flush=True)
    if mode(settings) == "docker":
        _generate_in_container(site)
    else:
        _generate_native(settings, site)
    missing = undocumented(json.loads((site / "manifest.json").read_text()),
                           json.loads((site / "catalog.json").read_text()))
    for line in missing:
        print(f"  not described: {line}")
    print(f"Docs written to {site}" + (f" ({len(missing)} undescribed)" if missing else ", every model and column described"))
    if args.no_serve:
        return 0
    _serve(site, settings.bind_address, args.port or settings.docs_port)
    return 0


def site_directory(settings) -> Path:
    """Where the site is written: one per schema scope, like dbt's target directory."""
    suffix = settings.dbt_schema_suffix
    return settings.home / (f"docs-{suffix}" if suffix else "docs")


def undocumented(manifest: dict, catalog: dict) -> list[str]:
    """Models without a description, and columns that exist in the warehouse without one."""
    missing = []
    project = manifest["metadata"]["project_name"]
    for unique_id, node in sorted(manifest["nodes"].items()):
        if node["resource_type"] != "model" or node["package_name"] != project:
            continue
        if not node.get("description", "").strip():
            missing.append(f"model {node['name']}")
        described = {name.lower() for name, column in node.get("columns", {}).items() if column.get("description", "").strip()}
        for column in (catalog["nodes"].get(unique_id) or {}).get("columns", {}):
            if column.lower() not in described:
                missing.append(f"column {node['name']}.{column}")
    return missing


def _generate_native(settings, site: Path) -> None:
    from smartmeter.pipeline.cycle import Runner
    from smartmeter.pipeline.dbt import dbt_paths

    result = Runner(settings, "docs").dbt(["docs", "generate"])
    if not result.ok:
        raise LakehouseError("dbt docs generate failed (its output is above)")
    target = dbt_paths(settings)[0]
    for name in SITE_FILES:
        shutil.copy2(target / name, site / name)


def _generate_in_container(site: Path) -> None:
    if subprocess.call(["docker", "exec", "dbt-transformations", "dbt", "docs", "generate"]) != 0:
        raise LakehouseError("dbt docs generate failed in the dbt-transformations container (its output is above)")
    for name in SITE_FILES:
        subprocess.run(["docker", "cp", f"dbt-transformations:{CONTAINER_TARGET}/{name}", str(site / name)], check=True)


def _serve(site: Path, host: str, port: int) -> None:
    handler = partial(SimpleHTTPRequestHandler, directory=str(site))
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise LakehouseError(f"cannot serve the docs on {host}:{port}: {exc.strerror} (set DOCS_PORT or --port)") from exc
    print(f"Serving the docs at http://{host}:{port}/ (Ctrl+C stops)", flush=True)
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print()
