"""`flx about`: the utility's settings in the same JSON shape as a singer-sdk plugin's `--about`.

The Meltano lock file of the `flx` utility is generated from this, like the tap's and target's from theirs,
so what `meltano config flx list` shows and what `flx` reads can't drift apart: the settings are the
documented fields of `DatabaseSettings` and `FlxSettings` (`flx_core.setting_schema`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flx.config import FlxSettings
from flx_core.plugin_settings import plugin_settings

FLX_SETTINGS = plugin_settings("flx", FlxSettings)


def about() -> dict[str, Any]:
    try:
        flx_version = version("flx")
    except PackageNotFoundError:  # running from a source tree
        flx_version = "0.0.0"
    return {
        "name": "flx",
        "description": "Runs Meltano jobs with retries, timeouts, no overlap, history, validations, alerts.",
        "version": flx_version,
        "capabilities": [],
        "settings": FLX_SETTINGS.to_dict(),
    }
