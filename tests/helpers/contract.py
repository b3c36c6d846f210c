"""The contract marts' columns: tables may add columns after these, never rename them."""

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
