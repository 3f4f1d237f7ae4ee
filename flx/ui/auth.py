"""Who may see and do what.

- Bound to loopback without a token: pages for anyone on this machine, no actions. The Host header must
  name a loopback address, so a web page elsewhere cannot reach the server through DNS rebinding.
- With a token (`--token`, `FLX_UI_TOKEN`, or generated for `--actions`): actions need it; beyond loopback
  every page and `/metrics` need it too. A browser presents it once (`/login`, or `?token=` in the URL flx
  ui prints) and keeps a session cookie (HttpOnly, SameSite=Strict) holding a digest of it, never the token;
  scripts and Prometheus send `Authorization: Bearer TOKEN`. A POST with the cookie must also come from a
  page of this server (Origin or Referer), against cross-site request forgery.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

COOKIE = "flx_ui_session"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host of a Host header value, without the port (IPv6 literals keep no brackets)."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


@dataclass(frozen=True)
class Access:
    token: str | None
    public: bool  # bound beyond loopback: every page needs the token

    @property
    def session(self) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), b"flx ui session", hashlib.sha256).hexdigest()

    def host_allowed(self, conn: HTTPConnection) -> bool:
        if self.public:
            return True
        return is_loopback(_host_name(conn.headers.get("host", "")))

    def token_matches(self, given: str | None) -> bool:
        return bool(self.token and given and hmac.compare_digest(given.encode(), self.token.encode()))

    def bearer(self, conn: HTTPConnection) -> bool:
        scheme, _, value = conn.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(value.strip())

    def cookie(self, conn: HTTPConnection) -> bool:
        value = conn.cookies.get(COOKIE)
        return bool(self.token and value and hmac.compare_digest(value.encode(), self.session.encode()))

    def authenticated(self, conn: HTTPConnection) -> bool:
        return self.token is not None and (self.bearer(conn) or self.cookie(conn))

    def may_view(self, conn: HTTPConnection) -> bool:
        return not self.public or self.authenticated(conn)

    def may_act(self, conn: HTTPConnection) -> bool:
        """Authenticated, and with the cookie, from one of this server's own pages."""
        if self.bearer(conn):
            return True
        if not self.cookie(conn):
            return False
        origin = conn.headers.get("origin") or conn.headers.get("referer")
        if not origin:
            return False
        return urlsplit(origin).netloc == conn.headers.get("host")
