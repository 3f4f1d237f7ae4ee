"""Keeping secrets off the pages: every value a template prints passes through a `Redactor`.

Three nets, widest last: the secret values this process knows (database and Oracle passwords, alert URLs
and their token-like parts, also those recorded with other machines' pipelines), the password of any URL
(`scheme://user:password@host`), and `password=…`-style assignments in free text (logs, errors).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

MASK = "•••"

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][\w+.-]*://[^\s/:@]*:)(?P<secret>[^\s@/]+)(?P<tail>@)")
_ASSIGNMENT = re.compile(
    r"(?P<head>\b(?:[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|credentials?))"
    r"(?:\"|')?\s*[=:]\s*)(?P<secret>\"[^\"]*\"|'[^']*'|[^\s,;&'\"})\]]+)",
    re.IGNORECASE,
)
_KEYWORD = re.compile(r"pass|pwd|secret|token|key|credential", re.IGNORECASE)
# Segments of an alert URL that look like tokens (webhook keys, bot tokens): long and with a digit in them.
_SEGMENT = re.compile(r"[^/:@?&=#]+")
_MIN_SECRET = 4


def url_secrets(url: str, tokens: bool = True) -> set[str]:
    """What to hide of a URL: itself and its password, and with `tokens` (apprise alert URLs, whose keys
    are path segments) its token-like segments too."""
    found = {url}
    try:
        parts = urlsplit(url)
        if parts.password:
            found.add(parts.password)
    except ValueError:
        pass
    if not tokens:
        return found
    rest = url.split("://", 1)[-1]
    for segment in _SEGMENT.findall(rest):
        if len(segment) >= 10 and any(c.isdigit() for c in segment) and not _is_address(segment):
            found.add(segment)
    return found


def _is_address(segment: str) -> bool:
    """A host name or IP address (letters, digits, dots, dashes with a dot in it): not a token."""
    return "." in segment and re.fullmatch(r"[\w.-]+", segment) is not None and not segment.isalnum()


class Redactor:
    """Callable: text in, the same text with every secret it knows or recognises masked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        known = set(self._secrets) | {s for s in secrets if s and len(s) >= _MIN_SECRET}
        # Longest first: a URL is masked whole before its own token is looked for.
        self._secrets = sorted(known, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        if "://" in text:
            text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", text)
        if ("=" in text or ":" in text) and _KEYWORD.search(text):
            text = _ASSIGNMENT.sub(lambda m: f"{m['head']}{MASK}", text)
        return text
