"""Where `flx` finds its database: `FLX_DATABASE_URL`, else the `flx` utility plugin's settings.

Meltano hands a utility plugin its settings as `FLX_<SETTING>` environment variables, so the same
names work from `meltano.yml`, from a shell, and from `FLX_DATABASE_URL` alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from flx_core.settings import DatabaseSettings


def database_settings(environ: Mapping[str, str] | None = None) -> DatabaseSettings:
    env = os.environ if environ is None else environ
    config: dict[str, str] = {}
    for name in DatabaseSettings.model_fields:
        value = env.get(f"FLX_{name.upper()}")
        if value not in (None, ""):
            config[name] = value
    if url := env.get("FLX_DATABASE_URL"):
        config["sqlalchemy_url"] = url
    return DatabaseSettings.from_config(config)
