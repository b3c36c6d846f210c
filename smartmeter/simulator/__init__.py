"""Smart meter telemetry simulator: master data, load profiles, faults, chaos and Kafka producers."""
