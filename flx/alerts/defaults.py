"""How often a still-failing pipeline is announced again, by default: the `alert_repeat_interval_seconds`
setting's default and the alert manager's, from one place that imports nothing."""

REPEAT_INTERVAL_SECONDS = 4 * 3600
