"""Developer tooling: the lock files and the README's settings tables, from the plugins' --about."""
