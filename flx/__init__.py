"""`flx`: runs Meltano ELT jobs with retries, timeouts, no-overlap, schedules, validations and alerts."""
