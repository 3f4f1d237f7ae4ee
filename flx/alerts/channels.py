"""Delivery through apprise, one channel at a time, so one dead channel neither raises nor hides the others.

Only privacy-masked URLs (`url(privacy=True)`) ever reach a log line: the real ones carry tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from apprise import Apprise, NotifyBase, NotifyType

log = logging.getLogger(__name__)


class AlertConfigError(ValueError):
    """An alert URL apprise cannot use; the message shows only the URL's scheme."""


class Channels:
    def __init__(self, urls: Sequence[str]) -> None:
        self._servers: list[NotifyBase] = []
        for position, url in enumerate(urls, start=1):
            server = Apprise.instantiate(url)
            if server is None:
                scheme = url.split("://", 1)[0] if "://" in url else "?"
                raise AlertConfigError(f"alert URL #{position} ({scheme}://…) is not a URL apprise supports")
            self._servers.append(server)

    def __len__(self) -> int:
        return len(self._servers)

    def describe(self) -> list[str]:
        """The channels, masked, for logs and `flx` diagnostics."""
        return [server.url(privacy=True) for server in self._servers]

    def send(self, title: str, body: str, notify_type: NotifyType) -> bool:
        """True when at least one channel took the message (someone was told); with no channel, False."""
        delivered = False
        for server in self._servers:
            try:
                ok = bool(server.notify(title=title, body=body, notify_type=notify_type))
            except Exception as exc:  # a plugin bug must not take the runner down
                log.warning("Alert channel %s raised %s", server.url(privacy=True), type(exc).__name__)
                ok = False
            if ok:
                delivered = True
            else:
                log.warning("Alert channel %s did not accept the notification", server.url(privacy=True))
        return delivered
