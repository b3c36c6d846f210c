"""Where ingest time goes: the same N Kafka messages read by each landing shape, side by side in one
run on the native stack (printed, never asserted).

    python -m bench.bench_ingest --messages 1000000     # needs that many messages in telemetry_raw_test

Shapes, each one Trino query over the first N/3 offsets of every partition of the test topic:
  scan       the floor of reading: sum(length(_message))
  json_parse try(json_parse(_message)), then 9 x json_extract_scalar (the first wave's landing)
  canonical  the decoder's text fields and the canonical-layout check (today's fast path)
  land_floor CREATE TABLE AS of the raw text: decode + Parquet write, no parsing at all
  land_json  CREATE TABLE AS of the first wave's parse (json_parse on every message)
  landing    CREATE TABLE AS of today's parse with the canonical check (what the model writes)
Then `landing` again under each Parquet codec Trino's Iceberg connector writes (session property
compression_codec; the catalog's default is ZSTD), twice in turn, with the files' total size.
Fill the topic first, e.g. `python -m bench.bench_scale scale --meters 100000 --days 1`.
"""

from __future__ import annotations

import argparse
import time

from smartmeter.config import TRINO_DBT_USER, load_settings
from smartmeter.trino_sql import TrinoSession, query

TOPIC = 'kafka.default."telemetry_raw_test"'
SCRATCH = 'iceberg.staging."bench_ingest_scratch"'
SCRATCH_FILES = 'iceberg.staging."bench_ingest_scratch$files"'
# LZ4 is refused for Parquet ("not supported").
CODECS = ("ZSTD", "SNAPPY", "NONE", "GZIP")

FIELDS = ("device_id", "customer_id", "timestamp", "status", "metrics.energy_kwh", "metrics.voltage",
          "metrics.battery_pct", "metrics.register_kwh", "interval_minutes")

CANONICAL = """concat('{"device_id": "', device_id, '", "customer_id": "', customer_id,
    '", "timestamp": "', reading_timestamp, '", "metrics": {"energy_kwh": ', energy_kwh,
    ', "voltage": ', voltage, ', "battery_pct": ', battery_pct,
    if(register_kwh is null and interval_minutes is null, concat('}, "status": "', status, '"}'),
       concat(', "register_kwh": ', register_kwh, '}, "status": "', status,
              '", "interval_minutes": ', interval_minutes, '}')))"""

PARSED = ", ".join(f"json_extract_scalar(j, '$.{field}') as f{i}" for i, field in enumerate(FIELDS))
FAST = ("_message = " + CANONICAL + " as is_canonical, device_id, customer_id, reading_timestamp, status, "
        "try_cast(energy_kwh as double) as energy_kwh, try_cast(voltage as double) as voltage_v, "
        "try_cast(battery_pct as double) as battery_pct, try_cast(register_kwh as double) as register_kwh")


def shapes(where: str) -> dict[str, list[str]]:
    return {
        "scan": [f"select sum(length(_message)) from {TOPIC} where {where}"],
        "json_parse": [f"select count(f0), count(f4), count(f8) from (select {PARSED} from "
                       f"(select try(json_parse(_message)) as j from {TOPIC} where {where}))"],
        "canonical": [f"select count_if(is_canonical), sum(energy_kwh) from (select {FAST} from {TOPIC} where {where})"],
        "land_floor": [f"drop table if exists {SCRATCH}",
                       f"create table {SCRATCH} as select _partition_id, _partition_offset, _message from {TOPIC} "
                       f"where {where}"],
        "land_json": [f"drop table if exists {SCRATCH}",
                      f"create table {SCRATCH} as select _partition_id, _partition_offset, {PARSED} from "
                      f"(select _partition_id, _partition_offset, try(json_parse(_message)) as j from {TOPIC} "
                      f"where {where})"],
        "landing": [f"drop table if exists {SCRATCH}",
                    f"create table {SCRATCH} as select _partition_id, _partition_offset, {FAST} from {TOPIC} "
                    f"where {where}"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    # The benchmarks write the lakehouse as the pipeline does: as the dbt user.
    settings = load_settings().as_trino(TRINO_DBT_USER)
    per_partition = args.messages // 3
    where = f"_partition_offset < {per_partition}"
    found = query(settings, f"select count(*) from {TOPIC} where {where}")[1][0][0]
    if found < per_partition * 3:
        raise SystemExit(f"telemetry_raw_test holds {found:,} of the {per_partition * 3:,} messages needed: "
                         "fill it first (see --help)")
    print(f"== ingest shapes over the same {found:,} messages")
    timings = {}
    for name, statements in shapes(where).items():
        started = time.monotonic()
        for sql in statements:
            query(settings, sql)
        timings[name] = time.monotonic() - started
        print(f"  {name:<11} {timings[name]:7.1f}s  {found / timings[name]:10,.0f} rows/s  "
              f"x{timings[name] / timings['scan']:.1f} of scan")
    codec_timings = compare_codecs(settings, shapes(where)["landing"][1], found)
    query(settings, f"drop table if exists {SCRATCH}")
    print(f"RESULT ingest json_parse/canonical={timings['json_parse'] / timings['canonical']:.2f} "
          f"land_json/landing={timings['land_json'] / timings['landing']:.2f} "
          f"landing/land_floor={timings['landing'] / timings['land_floor']:.2f} "
          + " ".join(f"{codec}/ZSTD={codec_timings[codec] / codec_timings['ZSTD']:.2f}" for codec in CODECS[1:]))


def compare_codecs(settings, landing: str, found: int) -> dict[str, float]:
    """The `landing` write under each codec, twice in turn (the machine's noise falls on all of
    them); the faster of the two counts."""
    print(f"== landing under each Parquet codec, {found:,} messages, best of 2")
    best: dict[str, float] = {}
    for round_number in (1, 2):
        for codec in CODECS:
            with TrinoSession(settings) as trino:
                trino.query(f"set session iceberg.compression_codec = '{codec}'")
                trino.query(f"drop table if exists {SCRATCH}")
                started = time.monotonic()
                trino.query(landing)
                elapsed = time.monotonic() - started
                size = trino.scalar(f"select sum(file_size_in_bytes) from {SCRATCH_FILES}")
            best[codec] = min(best.get(codec, elapsed), elapsed)
            print(f"  round {round_number} {codec:<7} {elapsed:7.1f}s  {found / elapsed:10,.0f} rows/s  "
                  f"{size / 1e6:7.1f} MB")
    return best


if __name__ == "__main__":
    main()
