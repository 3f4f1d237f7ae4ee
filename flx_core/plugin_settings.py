"""A plugin's settings schema: the shared `DatabaseSettings`, then the plugin's own settings model.

One definition for target-flx, tap-flx and the flx utility, so the three plugins document the same names
the same way; only the default `application_name` differs (each shows up under its own name in
pg_stat_activity).
"""

from __future__ import annotations

from typing import Any

from singer_sdk import typing as th

from flx_core.setting_schema import properties_list
from flx_core.settings import DatabaseSettings


def plugin_settings(application_name: str, own: type[Any]) -> th.PropertiesList:
    """The database settings, then `own`'s documented fields, as a singer-sdk properties list."""
    return properties_list(DatabaseSettings, own, defaults={"application_name": application_name})


def plugin_config_jsonschema(application_name: str, own: type[Any]) -> dict[str, Any]:
    """`plugin_settings` as the JSON Schema a singer-sdk plugin's `config_jsonschema` holds."""
    return plugin_settings(application_name, own).to_dict()
