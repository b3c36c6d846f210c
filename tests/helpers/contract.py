"""The contract users, the README and the tests rely on: extend it freely, never rename it.

The README states the same facts for people (Configuration; Marts and their rules); the tests
keep docker-compose.yml, smartmeter/config.py and the README in step with this module.
"""

# Contract marts: tables may add columns after these, never rename them.
CONTRACT = {
    "device_daily_metrics": [
        "device_id", "customer_id", "reading_date", "total_energy_kwh", "avg_voltage", "min_voltage", "max_voltage",
        "avg_battery_pct", "reading_count", "warning_count", "health_score_pct", "device_health_status",
    ],
    "customer_usage_summary": [
        "customer_id", "reading_date", "total_energy_kwh", "avg_voltage", "active_device_count", "total_warnings",
        "avg_device_health", "customer_alert_status",
    ],
}

# Ports on the host, by the label the README uses: (the variable that overrides it, its default).
HOST_PORTS = {
    "Kafka": ("KAFKA_PORT", 19092),
    "Kafka UI": ("KAFKA_UI_PORT", 8080),
    "Trino": ("TRINO_PORT", 8081),
    "PostgreSQL": ("POSTGRES_PORT", 5432),
    "S3": ("S3_PORT", 9000),
}
