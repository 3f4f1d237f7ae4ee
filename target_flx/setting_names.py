"""Setting names: a misspelt one is an error with a suggestion, never a silent default.

A typo in a connection setting would otherwise send the load to the embedded database. Names that
MeltanoLabs target-postgres uses and target-flx does not need are accepted with a note, so a project
switching loaders keeps its `config` as it is.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from target_flx.errors import SettingError

log = logging.getLogger("target_flx")

NOT_NEEDED = {
    "use_copy": "target-flx always loads with binary COPY",
    "dialect+driver": "target-flx always connects with asyncpg",
    "ssl_storage_directory": "target-flx reads certificate files where the ssl_* settings name them",
    "batch_config": "it configures how a tap writes BATCH files; target-flx reads them as they come",
}


def check_names(config: Mapping[str, Any], known: Iterable[str]) -> None:
    """Raise for unknown settings (all of them, in one line); note the not-needed ones once each."""
    known = set(known)
    unknown = []
    for name in sorted(config):
        if name in known:
            continue
        if name in NOT_NEEDED:
            log.info("setting %r is not needed by target-flx (%s); it is ignored", name, NOT_NEEDED[name])
            continue
        if name == "ssh_tunnel":
            tunnel = config[name]
            if isinstance(tunnel, Mapping) and tunnel.get("enable"):
                raise SettingError(
                    "setting 'ssh_tunnel' is not supported by target-flx: open the tunnel outside it"
                    " (e.g. ssh -L) and point host and port at the tunnel's local end"
                )
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        unknown.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise SettingError(
            f"unknown setting{plural} {', '.join(unknown)}; `target-flx --about` lists the settings"
        )
