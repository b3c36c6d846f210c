"""Smart meter telemetry simulator; see `python3 telemetry_simulator.py --help`."""

from smartmeter.simulator.cli import main

raise SystemExit(main())
