"""`./lakehouse <command>`: day-2 operations on the lakehouse (native mode)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from smartmeter.config import REPO_ROOT, load_settings
from smartmeter.errors import LakehouseError

DESCRIPTION = """Day-2 operations on the smart meter lakehouse, in native or Docker mode.

  up        start every service, keeping data (--trino-workers N adds Trino workers)
  down      stop every service, keeping data
  status    one line per service; exit 0 only when all are healthy
  logs      print a service's log (postgres, objectstore, kafka, trino, trino-worker-N, dbt)
  sql       run one Trino statement and print the result as a table
  trino     the interactive Trino CLI
  dbt       dbt against the running stack, e.g. ./lakehouse dbt build (one bounded batch)
  catch-up  pipeline cycles back to back until no topic has a backlog
  pipeline  the pipeline's record: runs, gaps, acknowledge-gap, cycle
  maintain  Iceberg maintenance: optimize, expire_snapshots, remove_orphan_files
  test      lint, unit and integration tests (starts the stack if needed)

Mode: LAKEHOUSE_MODE=native|docker, else native when $LAKEHOUSE_HOME holds native state, else
Docker when a Docker engine answers.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakehouse", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    setup = sub.add_parser("setup", help="fresh setup (what ./initial-setup.sh runs): native by default, or --docker")
    setup_mode = setup.add_mutually_exclusive_group()
    setup_mode.add_argument("--native", action="store_true", help="local processes, no Docker (the default)")
    setup_mode.add_argument("--docker", action="store_true", help="Docker Compose (docker-compose.yml)")
    up = sub.add_parser("up", help="start, keeping data")
    up.add_argument("--trino-workers", type=int, metavar="N", help="run N Trino worker processes besides the coordinator")
    up.add_argument("--dbt-loop", action="store_true", help="also run the dbt loop (DBT_AUTO_RUN, DBT_RUN_INTERVAL)")
    sub.add_parser("down", help="stop, keeping data")
    sub.add_parser("status", help="health of every service")
    logs = sub.add_parser("logs", help="print a service's log")
    logs.add_argument("service")
    logs.add_argument("-n", "--lines", type=int, default=100, help="how many lines from the end (default 100)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    sql = sub.add_parser("sql", help="run one Trino statement")
    sql.add_argument("query")
    trino = sub.add_parser("trino", help="interactive Trino CLI")
    trino.add_argument("args", nargs=argparse.REMAINDER)
    dbt = sub.add_parser("dbt", help="run dbt against the stack")
    dbt.add_argument("args", nargs=argparse.REMAINDER)
    catch = sub.add_parser("catch-up", help="pipeline cycles until no topic has a backlog")
    catch.add_argument("--max-cycles", type=int, metavar="N", help="give up after N cycles")
    pipeline = sub.add_parser("pipeline", help="the pipeline's runs and gaps")
    pipeline_sub = pipeline.add_subparsers(dest="pipeline_command", required=True, metavar="subcommand")
    pipeline_sub.add_parser("cycle", help="run one pipeline cycle now (nothing happens when nothing is new)")
    pipeline_sub.add_parser("loop", help="the pipeline loop (what the pipeline service runs): DBT_AUTO_RUN, DBT_RUN_INTERVAL")
    pipeline_sub.add_parser("health", help="exit 0 when the loop's last good cycle is recent (the compose healthcheck)")
    pipeline_sub.add_parser("gaps", help="Kafka data the pipeline could not read, acknowledged or not")
    ack = pipeline_sub.add_parser("acknowledge-gap", help="accept recorded gaps and resume loading after them")
    ack.add_argument("gap_ids", nargs="*", type=int, metavar="GAP_ID", help="only these gaps (default: every open one)")
    maintain = sub.add_parser("maintain", help="Iceberg table maintenance")
    maintain.add_argument("args", nargs=argparse.REMAINDER)
    stop = sub.add_parser("stop-service", help="stop one service (for failure drills)")
    stop.add_argument("service")
    test = sub.add_parser("test", help="run the test suite")
    test.add_argument("args", nargs=argparse.REMAINDER, help="extra pytest arguments")
    return parser


def _run_sql(query: str) -> int:
    from trino.exceptions import TrinoConnectionError, TrinoQueryError

    from smartmeter.trino_sql import format_table
    from smartmeter.trino_sql import query as run_query

    settings = load_settings()
    try:
        columns, rows = run_query(settings, query)
    except TrinoQueryError as exc:
        print(f"Query failed: {exc.error_name}: {exc.message}", file=sys.stderr)
        return 1
    except (TrinoConnectionError, OSError):
        print(f"Cannot reach Trino at {settings.trino_url}. Is the stack up? Check with ./lakehouse status, "
              "start it with ./lakehouse up", file=sys.stderr)
        return 1
    print(format_table(columns, rows) if columns else "OK")
    return 0


def _trino_cli(args: list[str]) -> int:
    from smartmeter.native import artifacts
    from smartmeter.native.stack import make_context

    ctx = make_context(load_settings())
    jar = artifacts.fetch(ctx.layout, artifacts.TRINO_CLI)
    settings = ctx.settings
    # The CLI loads JLine's native terminal library; Java 25 warns unless native access is allowed.
    command = [ctx.java, "--enable-native-access=ALL-UNNAMED", "-jar", str(jar),
               f"--server={settings.trino_url}", f"--user={settings.trino_user}", *args]
    return subprocess.call(command, env=ctx.env())


def _dbt(args: list[str]) -> int:
    from smartmeter.pipeline.cycle import CycleReport, Runner

    result = Runner(load_settings(), "manual").dbt(args)
    if isinstance(result, CycleReport):
        print(result.summary())
        if result.total_behind:
            print(f"{result.total_behind:,} message(s) are still waiting in Kafka: ./lakehouse catch-up loads them all")
        return 0 if result.status == "ok" else 1
    return result.returncode


def _pipeline(args: argparse.Namespace) -> int:
    from smartmeter.pipeline.cycle import Runner
    from smartmeter.pipeline.store import PipelineStore

    settings = load_settings()
    if args.pipeline_command == "loop":
        from smartmeter.pipeline.loop import Loop

        return Loop(settings).run()
    if args.pipeline_command == "health":
        from smartmeter.pipeline.loop import loop_health

        healthy, text = loop_health(settings)
        print(text)
        return 0 if healthy else 1
    if args.pipeline_command == "cycle":
        report = Runner(settings, "manual").cycle()
        print(report.summary())
        return 0 if report.status in ("ok", "idle") else 1
    store = PipelineStore(settings)
    try:
        if args.pipeline_command == "acknowledge-gap":
            import getpass

            gaps = store.acknowledge_gaps(getpass.getuser(), args.gap_ids or None)
            print(f"acknowledged {len(gaps)} gap(s); loading resumes after them on the next cycle" if gaps
                  else "no open gap to acknowledge")
            return 0
        gaps = store.gaps()
        if not gaps:
            print("no gaps: every Kafka message the pipeline saw was loaded")
        for gap in gaps:
            state = f"acknowledged {gap.acknowledged_at:%Y-%m-%d %H:%M:%S}" if gap.acknowledged_at else "OPEN"
            print(f"gap {gap.gap_id} [{state}] {gap.kind} {gap.topic}/{gap.partition}: {gap.detail}")
        return 0
    finally:
        store.close()


def _logs(service: str, lines: int, follow: bool) -> int:
    from smartmeter.native.stack import log_path

    path = log_path(load_settings(), service)
    if path is None:
        return 1
    command = ["tail", "-n", str(lines)] + (["-F"] if follow else []) + [str(path)]
    return subprocess.call(command)


def _ensure_test_tools() -> None:
    """Tools the test suite needs beyond the venv: shellcheck and a Docker Compose v2 to validate with."""
    if shutil.which("shellcheck") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise LakehouseError("the tests need shellcheck: sudo apt-get install -y shellcheck")
        print("installing shellcheck ...", flush=True)
        for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "shellcheck"]):
            if subprocess.call(command, stdout=subprocess.DEVNULL) != 0:
                raise LakehouseError(f"`{' '.join(command)}` failed; install shellcheck by hand")
    from smartmeter import compose_check

    if compose_check.find_compose() is None:
        compose_check.install()


def _test(extra: list[str]) -> int:
    from smartmeter.native import stack

    settings = load_settings()
    _ensure_test_tools()
    print("== lint", flush=True)
    lint = [
        [sys.executable, "-m", "ruff", "check", "."],
        [sys.executable, "-m", "sqlfluff", "lint", "--disable-progress-bar", "dbt-project/models"],
    ]
    for command in lint:
        if not (REPO_ROOT / command[-1]).exists():
            continue
        if subprocess.call(command, cwd=REPO_ROOT) != 0:
            print(f"lint failed: {' '.join(command[2:])}", file=sys.stderr)
            return 1
    print("== stack", flush=True)
    if not stack.status(settings):
        print("stack not healthy: running a fresh native setup", flush=True)
        stack.setup(settings)
    print("== pytest", flush=True)
    code = subprocess.call([sys.executable, "-m", "pytest", "tests/unit", "tests/integration", *extra], cwd=REPO_ROOT)
    if code == 5:
        print("pytest collected no tests: that is a failure", file=sys.stderr)
        return 1
    return code


def _mode(settings) -> str:
    chosen = os.environ.get("LAKEHOUSE_MODE", "auto")
    if chosen in ("native", "docker"):
        return chosen
    if (settings.home / "data").exists():
        return "native"
    if shutil.which("docker") and subprocess.call(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
        return "docker"
    return "native"


def _docker(args: argparse.Namespace) -> int:
    """The day-2 commands that differ in Docker mode (sql, maintain and test talk to ports, not processes)."""
    from smartmeter import compose

    interactive = ["-it"] if sys.stdin.isatty() else []
    match args.command:
        case "up":
            if args.trino_workers:
                os.environ["TRINO_WORKERS"] = str(args.trino_workers)
            return compose.up(("cluster",) if args.trino_workers else ())
        case "down":
            return compose.down()
        case "status":
            return 0 if compose.status() else 1
        case "logs":
            return compose.logs(args.service, args.lines, args.follow)
        case "trino":
            return subprocess.call(["docker", "exec", *interactive, "trino-coordinator", "trino", *args.args])
        case "dbt":
            return subprocess.call(["docker", "exec", *interactive, "dbt-transformations", "dbt", *args.args])
        case "catch-up":
            extra = ["--max-cycles", str(args.max_cycles)] if args.max_cycles else []
            return subprocess.call(["docker", "exec", *interactive, "dbt-transformations",
                                    "/opt/lakehouse/bin/python", "-m", "smartmeter", "catch-up", *extra])
    raise AssertionError(f"no Docker mode for {args.command}")


# Their arguments belong to another tool (dbt, the Trino CLI, pytest), options included.
PASSTHROUGH = ("trino", "dbt", "maintain", "test")



def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PASSTHROUGH:
        args = argparse.Namespace(command=argv[0], args=argv[1:])
    else:
        args = _parser().parse_args(argv)
    from smartmeter.native import stack

    try:
        settings = load_settings()
        if args.command in ("up", "down", "status", "logs", "trino", "dbt", "catch-up") and _mode(settings) == "docker":
            return _docker(args)
        match args.command:
            case "setup" if args.docker:
                from smartmeter.compose import setup as compose_setup

                return compose_setup()
            case "setup":
                stack.setup(settings)
            case "up":
                stack.up(settings, trino_workers=args.trino_workers, dbt_loop=args.dbt_loop)
            case "down":
                stack.down(settings)
            case "status":
                return 0 if stack.status(settings) else 1
            case "logs":
                return _logs(args.service, args.lines, args.follow)
            case "sql":
                return _run_sql(args.query)
            case "trino":
                return _trino_cli(args.args)
            case "dbt":
                return _dbt(args.args)
            case "catch-up":
                from smartmeter.pipeline.catch_up import catch_up

                return catch_up(settings, max_cycles=args.max_cycles)
            case "pipeline":
                return _pipeline(args)
            case "maintain":
                from smartmeter.maintenance import main as maintain

                return maintain(args.args)
            case "stop-service":
                stack.stop_service(settings, args.service)
            case "test":
                return _test(args.args)
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
