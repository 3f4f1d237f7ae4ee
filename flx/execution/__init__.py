"""Running one pipeline: the runner, its child process and supervisor, leases, records, logs."""
