"""`./lakehouse pipeline ...`: the loop, one cycle, health, runs, and Kafka gaps."""

import getpass

from smartmeter.config import TRINO_DBT_USER

NAME = "pipeline"
# The Trino user this command works as (trino-config/etc/rules.json); cli.py applies it.
TRINO_AS = TRINO_DBT_USER
HELP = "the pipeline: cycle, loop, health, runs, gaps, acknowledge-gap"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="pipeline_command", required=True, metavar="subcommand")
    sub.add_parser("cycle", help="run one pipeline cycle now (nothing happens when nothing is new)")
    sub.add_parser("loop", help="the pipeline loop (what the pipeline service runs): DBT_AUTO_RUN, DBT_RUN_INTERVAL")
    sub.add_parser("health", help="exit 0 when the loop's last good cycle is recent (the compose healthcheck)")
    runs = sub.add_parser("runs", help="the latest runs")
    runs.add_argument("-n", "--limit", type=int, default=20, help="how many (default 20)")
    sub.add_parser("gaps", help="Kafka data the pipeline could not read, acknowledged or not")
    ack = sub.add_parser("acknowledge-gap", help="accept recorded gaps and resume loading after them")
    ack.add_argument("gap_ids", nargs="*", type=int, metavar="GAP_ID", help="only these gaps (default: every open one)")


def run(args, settings) -> int:
    from smartmeter.pipeline.store import PipelineStore

    match args.pipeline_command:
        case "loop":
            from smartmeter.pipeline.loop import Loop

            return Loop(settings).run()
        case "health":
            from smartmeter.pipeline.loop import loop_health

            healthy, text = loop_health(settings)
            print(text)
            return 0 if healthy else 1
        case "cycle":
            from smartmeter.pipeline.cycle import Runner

            report = Runner(settings, "manual").cycle()
            print(report.summary())
            return 0 if report.status in ("ok", "idle") else 1
    store = PipelineStore(settings)
    try:
        match args.pipeline_command:
            case "runs":
                print(_runs_table(store.recent_runs(args.limit)))
            case "acknowledge-gap":
                gaps = store.acknowledge_gaps(getpass.getuser(), args.gap_ids or None)
                print(f"acknowledged {len(gaps)} gap(s); loading resumes after them on the next cycle" if gaps
                      else "no open gap to acknowledge")
            case "gaps":
                gaps = store.gaps()
                if not gaps:
                    print("no gaps: every Kafka message the pipeline saw was loaded")
                for gap in gaps:
                    state = f"acknowledged {gap.acknowledged_at:%Y-%m-%d %H:%M:%S}" if gap.acknowledged_at else "OPEN"
                    print(f"gap {gap.gap_id} [{state}] {gap.kind} {gap.topic}/{gap.partition}: {gap.detail}")
    finally:
        store.close()
    return 0


def _runs_table(runs) -> str:
    from smartmeter.trino_sql import format_table

    columns = ["run_id", "trigger", "status", "started_at", "seconds", "taken", "behind", "reason"]
    rows = [(r.run_id, r.trigger, r.status, f"{r.started_at:%Y-%m-%d %H:%M:%S}",
             f"{r.duration_s:.1f}" if r.duration_s is not None else "", r.messages_taken, r.messages_behind,
             (r.error or r.reason or "")[:80]) for r in runs]
    return format_table(columns, rows)
