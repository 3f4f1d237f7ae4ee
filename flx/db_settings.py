"""Where `flx` finds its database: `FLX_DATABASE_URL`, else `FLX_<SETTING>` variables, else meltano.yml.

Meltano hands a utility plugin its settings as `FLX_<SETTING>` environment variables, so the same
names work from `meltano.yml`, from a shell, and from `FLX_DATABASE_URL` alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from flx_core.settings import DatabaseSettings


def database_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The database settings the environment sets, as a plugin-style config dict."""
    env = os.environ if environ is None else environ
    config = {
        name: value
        for name in DatabaseSettings.model_fields
        if (value := env.get(f"FLX_{name.upper()}")) not in (None, "")
    }
    if url := env.get("FLX_DATABASE_URL"):
        config["sqlalchemy_url"] = url
    return config


def database_settings(environ: Mapping[str, str] | None = None) -> DatabaseSettings:
    return DatabaseSettings.from_config(database_env(environ))
