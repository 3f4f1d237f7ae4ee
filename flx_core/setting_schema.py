"""singer-sdk settings schemas generated from the pydantic models that declare the settings.

A setting is declared once, as a field of the model that reads it: name (the field's alias when the
public name differs), type, default, description, and secret-ness (a `SecretStr`, or
`json_schema_extra={"secret": True}` for a value the code needs in the clear). `--about`, the plugins'
`config_jsonschema`, the Meltano lock files and the README tables are all made from that, so none of them
can document a setting the code reads differently. A field without a description is internal state (or a
setting documented by another model) and is left out.
"""

from __future__ import annotations

import datetime
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from singer_sdk import typing as th

_SCALARS: dict[Any, type[th.JSONTypeHelper[Any]]] = {
    bool: th.BooleanType,
    int: th.IntegerType,
    float: th.NumberType,
    str: th.StringType,
    SecretStr: th.StringType,
    datetime.datetime: th.DateTimeType,
}


def model_fields(model: type[Any]) -> dict[str, FieldInfo]:
    """The fields of a pydantic model or pydantic dataclass, in declaration order."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return dict(model.model_fields)
    fields = getattr(model, "__pydantic_fields__", None)
    if fields is None:
        raise TypeError(f"{model!r} is neither a pydantic model nor a pydantic dataclass")
    return dict(fields)


def documented(model: type[Any]) -> dict[str, FieldInfo]:
    """The model's settings by public name: the fields that have a description."""
    return {info.alias or name: info for name, info in model_fields(model).items() if info.description}


def setting_default(model: type[Any], name: str) -> Any:
    """A field's default as the code uses it (by field name, not alias)."""
    default = model_fields(model)[name].default
    return None if default is PydanticUndefined else default


def properties(model: type[Any], defaults: Mapping[str, Any] | None = None) -> list[th.Property[Any]]:
    """One singer-sdk `Property` per documented field; `defaults` replaces a default by public name."""
    found = []
    for name, info in documented(model).items():
        kind, allowed = _json_type(info.annotation)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, Mapping) else {}
        default = defaults[name] if defaults and name in defaults else info.default
        found.append(
            th.Property(
                name,
                kind,
                default=_shown_default(default),
                description=info.description,
                secret=bool(extra.get("secret")) or _is_secret(info.annotation),
                allowed_values=allowed,
            )
        )
    return found


def properties_list(*models: type[Any], defaults: Mapping[str, Any] | None = None) -> th.PropertiesList:
    """The documented fields of `models`, in order, as one singer-sdk properties list."""
    every = [prop for model in models for prop in properties(model, defaults)]
    names = [prop.name for prop in every]
    if twice := sorted({name for name in names if names.count(name) > 1}):
        raise ValueError(f"settings declared by more than one model: {', '.join(twice)}")
    return th.PropertiesList(*every)


def _shown_default(default: Any) -> Any:
    """What the schema says the default is: nothing for no value or an empty collection; a float that is
    a whole number written as one (`30`, not `30.0`), as JSON has a single number type."""
    if default is PydanticUndefined or default is None:
        return None
    if isinstance(default, tuple | list | dict | set | frozenset) and not default:
        return None
    if isinstance(default, float) and default.is_integer():
        return int(default)
    if isinstance(default, tuple):
        return list(default)
    return default


def _optional_inner(annotation: Any) -> Any:
    """`X` for `X | None` (and `Optional[X]`); the annotation itself otherwise."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
        raise TypeError(f"a setting has one type (or that type or None), got {annotation!r}")
    return annotation


def _is_secret(annotation: Any) -> bool:
    return _optional_inner(annotation) is SecretStr


def _json_type(
    annotation: Any,
) -> tuple[th.JSONTypeHelper[Any] | type[th.JSONTypeHelper[Any]], list[Any] | None]:
    """The singer-sdk type of a field's annotation, and its allowed values for a `Literal`."""
    inner = _optional_inner(annotation)
    origin = typing.get_origin(inner)
    if origin is typing.Literal:
        allowed = list(typing.get_args(inner))
        if not all(isinstance(value, str) for value in allowed):
            raise TypeError(f"a setting's allowed values are strings, got {inner!r}")
        return th.StringType, allowed
    if origin in (tuple, list):
        args = [arg for arg in typing.get_args(inner) if arg is not Ellipsis]
        if len(args) != 1:
            raise TypeError(f"a list setting has one item type, got {inner!r}")
        item, _ = _json_type(args[0])
        return th.ArrayType(item), None
    if origin in (dict, Mapping):
        return th.ObjectType(additional_properties=True), None
    if inner in _SCALARS:
        return _SCALARS[inner], None
    raise TypeError(f"no singer-sdk type for a setting of type {inner!r}")
