"""Where alerts go: apprise URLs from the flx config plus `FLX_ALERT_URLS` from the environment.

Tokens usually sit inside these URLs, so a deployment can keep them out of `meltano.yml` by setting the
environment variable instead; both lists are merged. `FLX_ALERT_URLS` is either a JSON list (what
`meltano invoke flx` exports for a list setting) or comma/space separated URLs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping

from flx_core.settings import SettingsError

ENV_VAR = "FLX_ALERT_URLS"
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def parse_alert_urls(value: str | None) -> list[str]:
    """A JSON list of URLs, or a comma/space separated list of apprise URLs.

    apprise's own splitter is used because a URL may itself contain commas (`mailto://…?to=a@x,b@y`).
    Empty entries are dropped: Meltano expands an unset variable to nothing.
    """
    if not value or not value.strip():
        return []
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(
                f"{ENV_VAR} looks like a JSON list but is not valid JSON: {exc.msg}"
            ) from None
        if not isinstance(parsed, list) or not all(isinstance(url, str) for url in parsed):
            raise SettingsError(f"{ENV_VAR}: a JSON value must be a list of URL strings")
        return [url.strip() for url in parsed if url.strip()]
    from apprise.utils.parse import parse_urls  # imported here: apprise is slow to load

    return [url.strip() for url in parse_urls(text) if url.strip()]


def merge_alert_urls(configured: Iterable[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """Configured URLs then `FLX_ALERT_URLS`, duplicates and empty entries dropped, order kept."""
    env = os.environ if environ is None else environ
    merged: list[str] = []
    for url in [*configured, *parse_alert_urls(env.get(ENV_VAR))]:
        if url.strip() and url not in merged:
            merged.append(url)
    return merged


def unset_variables(urls: Iterable[str]) -> list[str]:
    """Names of `$VAR` / `${VAR}` references left in URLs: variables that were not set when expanded."""
    found: list[str] = []
    for url in urls:
        for match in _VARIABLE.finditer(url):
            name = match[1] or match[2]
            if name not in found:
                found.append(name)
    return found
