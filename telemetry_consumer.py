"""Read and pretty-print telemetry or fault-log messages; see `python3 telemetry_consumer.py --help`."""

from smartmeter.environment import ensure_dependencies

ensure_dependencies("telemetry_consumer.py")

from smartmeter.consumer import main  # noqa: E402 - only once the dependencies are there

raise SystemExit(main())
