"""Smart meter telemetry simulator; see `python3 telemetry_simulator.py --help`."""

from smartmeter.environment import ensure_dependencies

ensure_dependencies("telemetry_simulator.py")

from smartmeter.simulator.cli import main  # noqa: E402 - only once the dependencies are there

raise SystemExit(main())
