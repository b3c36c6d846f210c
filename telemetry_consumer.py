"""Read and pretty-print telemetry or fault-log messages; see `python3 telemetry_consumer.py --help`."""

from smartmeter.consumer import main

raise SystemExit(main())
