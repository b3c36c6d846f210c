#!/usr/bin/env bash
# The dbt run loop: the same script for the compose container and the native `./lakehouse` dbt
# service.
#
#   DBT_AUTO_RUN      true (default): run `dbt build` every DBT_RUN_INTERVAL seconds.
#                     false: stay idle, so `docker exec ... dbt run` (or ./lakehouse dbt) works.
#   DBT_RUN_INTERVAL  seconds from the start of one run to the start of the next (default 600).
#   DBT_TARGET        profiles.yml target (default native; compose sets docker).
#   DBT_LOOP_ARGS     the dbt command of each iteration
#                     (default: build --exclude-resource-type unit_test; unit tests belong in CI).
#   DBT_ORPHAN_WAIT_S on start, wait up to this long for writes of a previous, killed run that
#                     are still running on Trino (default 300), so two runs never write at once.
#
# Each iteration logs rows in (Kafka messages landed), rows rejected, readings staged and its
# duration. A failed run is logged and the loop goes on. SIGTERM/SIGINT stop the loop after
# interrupting dbt, which cancels its running queries.
set -uo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$PROJECT_DIR" || exit 1
export DBT_PROFILES_DIR="${DBT_PROFILES_DIR:-$PROJECT_DIR}"
export DBT_TARGET="${DBT_TARGET:-native}"
DBT_BIN="${DBT_BIN:-dbt}"
PYTHON_BIN="${DBT_PYTHON:-}"
if [[ -z "$PYTHON_BIN" ]]; then
    dbt_path="$(command -v "$DBT_BIN" 2>/dev/null || true)"
    if [[ -n "$dbt_path" && -x "$(dirname "$dbt_path")/python" ]]; then
        PYTHON_BIN="$(dirname "$dbt_path")/python"
    else
        PYTHON_BIN="python3"
    fi
fi
AUTO_RUN="$(printf '%s' "${DBT_AUTO_RUN:-true}" | tr '[:upper:]' '[:lower:]')"
INTERVAL="${DBT_RUN_INTERVAL:-600}"
read -r -a LOOP_ARGS <<<"${DBT_LOOP_ARGS:-build --exclude-resource-type unit_test}"
TARGET_PATH="${DBT_TARGET_PATH:-$PROJECT_DIR/target}"
export DBT_TARGET_PATH="$TARGET_PATH"
ORPHAN_WAIT_S="${DBT_ORPHAN_WAIT_S:-300}"

log() { printf '[dbt-loop] %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

if ! [[ "$INTERVAL" =~ ^[0-9]+$ ]] || (( INTERVAL < 1 )); then
    log "error: DBT_RUN_INTERVAL=$INTERVAL is not a positive whole number of seconds"
    exit 2
fi

stopping=0
child=0
child_is_dbt=0
on_signal() {
    stopping=1
    if (( child > 0 )) && kill -0 "$child" 2>/dev/null; then
        if (( child_is_dbt )); then
            log "stopping: interrupting dbt (pid $child) so it cancels its queries"
            kill -INT "$child" 2>/dev/null || true
        else
            kill -TERM "$child" 2>/dev/null || true
        fi
    fi
}
trap on_signal TERM INT

if [[ "$AUTO_RUN" != "true" ]]; then
    log "DBT_AUTO_RUN=$AUTO_RUN: idle. Run dbt by hand, e.g. 'dbt build' (target $DBT_TARGET)."
    while (( ! stopping )); do
        sleep 3600 &
        child=$!
        wait "$child" 2>/dev/null || true
        child=0
    done
    exit 0
fi

# Writes of a run killed without a chance to cancel (SIGKILL, crash) keep running on Trino until
# they finish; starting a new run before then could land the same offsets twice.
wait_for_orphaned_writes() {
    "$PYTHON_BIN" - "$ORPHAN_WAIT_S" <<'PY' || log "warning: could not check Trino for running writes; continuing"
import os, sys, time
import trino

deadline = time.monotonic() + float(sys.argv[1])
conn = trino.dbapi.connect(host=os.environ.get("TRINO_HOST", "localhost"),
                           port=int(os.environ.get("TRINO_PORT", "8081")),
                           user=os.environ.get("TRINO_USER", "lakehouse"))
suffix = os.environ.get("DBT_SCHEMA_SUFFIX", "")
schema = "staging" + (f"_{suffix}" if suffix else "")
sql = ("select count(*) from system.runtime.queries where state not in ('FINISHED', 'FAILED') "
       "and source like 'dbt-trino%' and regexp_like(lower(query), '(insert into|merge into|create table)') "
       f"and query like '%\"{schema}\"%'")
announced = False
while True:
    cur = conn.cursor()
    cur.execute(sql)
    running = cur.fetchall()[0][0]
    if not running:
        break
    if time.monotonic() > deadline:
        print(f"[dbt-loop] warning: {running} write(s) of an earlier dbt run still running; starting anyway", flush=True)
        break
    if not announced:
        print(f"[dbt-loop] waiting for {running} write(s) of an earlier dbt run to finish", flush=True)
        announced = True
    time.sleep(2)
PY
}

# rows in / rejected / staged of the last run, from dbt's run_results.json.
summarise_run() {
    "$PYTHON_BIN" - "$TARGET_PATH/run_results.json" <<'PY' 2>/dev/null || echo "rows_in=? rejected=? staged=?"
import json, sys

results = json.load(open(sys.argv[1]))["results"]
rows = {}
failed = 0
for r in results:
    name = r["unique_id"].split(".")[-1]
    rows[name] = (r.get("adapter_response") or {}).get("rows_affected")
    failed += r["status"] in ("error", "fail")
def n(name):
    value = rows.get(name)
    return "0" if value is None else str(value)
print(f"rows_in={n('stg_telemetry_messages')} rejected={n('stg_telemetry_rejected')} "
      f"staged={n('stg_telemetry_raw')} fault_lines_in={n('stg_fault_log_messages')} "
      f"fault_lines_rejected={n('stg_fault_logs_rejected')} failed_nodes={failed}")
PY
}

LOCK_FILE="$TARGET_PATH/.dbt-loop.lock"
mkdir -p "$TARGET_PATH"
exec 9>"$LOCK_FILE"
if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
    log "error: another dbt loop holds $LOCK_FILE; only one may write the lakehouse at a time"
    exit 1
fi

log "starting: target=$DBT_TARGET interval=${INTERVAL}s command='dbt ${LOOP_ARGS[*]}'"
wait_for_orphaned_writes
iteration=0
while (( ! stopping )); do
    iteration=$((iteration + 1))
    started=$(date +%s.%N)
    rm -f "$TARGET_PATH/run_results.json"
    # Background jobs of a script start with SIGINT ignored; restore it so dbt can be
    # interrupted (it then cancels its queries on Trino).
    "$PYTHON_BIN" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
        "$DBT_BIN" "${LOOP_ARGS[@]}" &
    child=$!
    child_is_dbt=1
    wait "$child"
    status=$?
    # A signal interrupts `wait` before dbt has finished: wait for dbt itself.
    while kill -0 "$child" 2>/dev/null; do
        wait "$child"
        status=$?
    done
    child=0
    child_is_dbt=0
    duration=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    summary="$(summarise_run)"
    if (( stopping )); then
        log "run #$iteration interrupted (exit $status): $summary duration=${duration}s"
    elif (( status == 0 )); then
        log "run #$iteration ok: $summary duration=${duration}s"
    else
        log "run #$iteration FAILED (exit $status): $summary duration=${duration}s; next run in ${INTERVAL}s"
    fi
    (( stopping )) && break
    pause=$(awk -v i="$INTERVAL" -v d="$duration" 'BEGIN { p = i - d; printf "%d", (p > 0 ? p : 0) }')
    if (( pause > 0 )); then
        sleep "$pause" &
        child=$!
        wait "$child" 2>/dev/null || true
        kill "$child" 2>/dev/null || true
        child=0
    fi
done
log "stopped after $iteration run(s)"
