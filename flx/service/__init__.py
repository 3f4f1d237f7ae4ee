"""The long-running processes: `flx serve`'s scheduler and `flx worker`'s queue."""
