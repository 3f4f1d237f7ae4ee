"""Settings schemas generated from the pydantic models, and the places that still repeat a model's default."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.dataclasses import dataclass

from flx_core.plugin_settings import plugin_settings
from flx_core.setting_schema import documented, properties_list, setting_default
from flx_core.settings import DatabaseSettings


class Example(BaseModel):
    name: str | None = Field(default=None, description="A name.")
    port: int = Field(default=5432, description="A port.")
    seconds: float = Field(default=30.0, description="Whole seconds show as an integer.")
    ratio: float = Field(default=0.5, description="A fraction stays one.")
    mode: Literal["a", "b"] = Field(default="a", description="One of two.")
    password: SecretStr | None = Field(default=None, description="Secret by its type.")
    urls: tuple[str, ...] = Field(
        default=(), description="Secret by mark.", json_schema_extra={"secret": True}
    )
    since: datetime | None = Field(default=None, description="An instant.")
    extra: dict[str, int] = Field(default={}, description="Free-form.")
    internal: str = "not a setting: no description"


@dataclass(frozen=True, config=ConfigDict(validate_by_name=True, validate_by_alias=True))
class Aliased:
    field_name: bool = Field(default=True, alias="public_name", description="Documented by its alias.")


def test_a_models_documented_fields_become_singer_sdk_properties() -> None:
    schema = properties_list(Example).to_dict()
    assert list(schema["properties"]) == [
        "name",
        "port",
        "seconds",
        "ratio",
        "mode",
        "password",
        "urls",
        "since",
        "extra",
    ]
    props = schema["properties"]
    assert props["name"] == {"type": ["string", "null"], "description": "A name."}
    assert props["port"]["default"] == 5432 and props["port"]["type"] == ["integer", "null"]
    assert props["seconds"]["default"] == 30 and isinstance(props["seconds"]["default"], int)
    assert props["ratio"]["default"] == 0.5 and props["ratio"]["type"] == ["number", "null"]
    assert props["mode"]["enum"] == ["a", "b"] and props["mode"]["default"] == "a"
    assert props["password"]["secret"] is True and props["password"]["writeOnly"] is True
    assert props["urls"]["secret"] is True and props["urls"]["type"] == ["array", "null"]
    assert "default" not in props["urls"] and "default" not in props["extra"]
    assert props["since"]["format"] == "date-time"
    assert props["extra"]["additionalProperties"] is True


def test_the_public_name_is_the_alias_and_the_default_is_read_by_field_name() -> None:
    assert list(documented(Aliased)) == ["public_name"]
    assert setting_default(Aliased, "field_name") is True
    assert properties_list(Aliased).to_dict()["properties"]["public_name"]["default"] is True


def test_a_setting_declared_by_two_models_is_refused() -> None:
    class Again(BaseModel):
        port: int = Field(default=1, description="Again.")

    with pytest.raises(ValueError, match="more than one model: port"):
        properties_list(Example, Again)


def test_a_type_without_a_json_schema_type_is_refused() -> None:
    class Odd(BaseModel):
        both: int | str = Field(default=1, description="Two types.")

    with pytest.raises(TypeError, match="one type"):
        properties_list(Odd)


def test_each_plugin_shows_its_own_application_name() -> None:
    from tap_flx.settings import TapSettings

    schema = plugin_settings("tap-flx", TapSettings).to_dict()
    assert schema["properties"]["application_name"]["default"] == "tap-flx"
    assert DatabaseSettings().application_name == "flx"


def test_target_settings_from_an_empty_config_are_the_declared_defaults() -> None:
    from target_flx.settings import LoadSettings

    settings = LoadSettings.from_config({})
    assert settings == LoadSettings()
    assert settings.control_schema == DatabaseSettings().control_schema


def test_the_flx_plugins_setting_names_are_the_documented_fields() -> None:
    from flx.config import OWN_SETTINGS, FlxSettings

    assert tuple(documented(FlxSettings)) == OWN_SETTINGS


def test_the_alert_managers_default_interval_is_the_settings_default() -> None:
    from flx.alerts.manager import DEFAULT_REPEAT_INTERVAL
    from flx.config import FlxSettings

    assert DEFAULT_REPEAT_INTERVAL.total_seconds() == FlxSettings().alert_repeat_interval_seconds == 14_400


def test_the_taps_lookback_default_is_the_settings_default() -> None:
    from tap_flx.meltano_runs import DEFAULT_LOOKBACK_SECONDS
    from tap_flx.settings import TapSettings

    assert TapSettings().meltano_runs_lookback_seconds == DEFAULT_LOOKBACK_SECONDS
