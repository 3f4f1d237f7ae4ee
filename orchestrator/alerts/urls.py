"""Where alerts go: apprise URLs from the flx config plus `FLX_ALERT_URLS` from the environment.

Tokens usually sit inside these URLs, so a deployment can keep them out of `meltano.yml` by setting the
environment variable instead; both lists are merged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from apprise.utils.parse import parse_urls

ENV_VAR = "FLX_ALERT_URLS"


def parse_alert_urls(value: str | None) -> list[str]:
    """Split a comma/space separated list of apprise URLs.

    apprise's own splitter is used because a URL may itself contain commas (`mailto://…?to=a@x,b@y`).
    """
    if not value or not value.strip():
        return []
    return [url.strip() for url in parse_urls(value) if url.strip()]


def merge_alert_urls(configured: Iterable[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """Configured URLs then `FLX_ALERT_URLS`, duplicates dropped, order kept."""
    env = os.environ if environ is None else environ
    merged: list[str] = []
    for url in [*configured, *parse_alert_urls(env.get(ENV_VAR))]:
        if url not in merged:
            merged.append(url)
    return merged
