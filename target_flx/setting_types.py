"""Setting values against their declared JSON types, for the start-up path that skips singer-sdk.

The settings are flat (a type, sometimes allowed values), so this checks exactly that, in one line per
mistake, the way singer-sdk's config validation would refuse them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from target_flx.errors import SettingError

_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}
_NAMES = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false"}


def check_types(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The config as it is, once every known setting's value has its declared type and allowed value."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    for name, value in config.items():
        spec = properties.get(name)
        if not isinstance(spec, Mapping):
            continue
        declared = spec.get("type")
        types = [declared] if isinstance(declared, str) else list(declared or [])
        if types and not any(_CHECKS.get(t, lambda v: True)(value) for t in types):
            wanted = " or ".join(_NAMES.get(t, t) for t in types if t != "null")
            shown = "a value" if spec.get("secret") or spec.get("writeOnly") else repr(value)
            raise SettingError(f"setting {name!r} must be {wanted}, got {shown}")
        allowed = spec.get("enum")
        if allowed and value is not None and value not in allowed:
            choices = ", ".join(map(str, (a for a in allowed if a is not None)))
            raise SettingError(f"setting {name!r} must be one of {choices}, got {value!r}")
    return dict(config)
