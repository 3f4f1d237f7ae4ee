"""The kind table (kinds.py) against the C encoder's enums, and its own rows."""

from __future__ import annotations

import pytest

from target_flx import copybin
from target_flx.copybin import CONST, EXTRACTED, FIELD, VERSION, kind_of
from target_flx.kinds import COLUMNS, ELEMENTS, SPECS, TABLE, Kind
from target_flx.reasons import Reason
from target_flx.types import ARRAY_ELEMENTS, normalize, python_type

needs_c = pytest.mark.skipif(not copybin.extension_built(), reason="the C extension was not built")


@needs_c
def test_the_c_enum_kind_is_the_table_s() -> None:
    from target_flx import _copybin

    assert {kind.name: kind.value for kind in Kind} == _copybin.KINDS


@needs_c
def test_the_c_reasons_and_sources_are_python_s() -> None:
    from target_flx import _copybin

    assert {name: Reason[name].value for name in _copybin.REASONS} == _copybin.REASONS
    assert _copybin.SOURCES == {"FIELD": FIELD, "EXTRACTED": EXTRACTED, "CONST": CONST, "VERSION": VERSION}


def test_every_kind_but_array_has_one_row() -> None:
    assert [spec.kind for spec in TABLE] == [kind for kind in Kind if kind is not Kind.ARRAY]
    assert set(SPECS) == set(Kind) - {Kind.ARRAY}


def test_sql_names_are_canonical_and_map_back() -> None:
    for name, spec in COLUMNS.items():
        assert normalize(name) == name
        assert kind_of(name) == spec.kind
        assert python_type(name) is spec.python
    for name, spec in ELEMENTS.items():
        assert kind_of(name + "[]") == Kind.ARRAY + spec.kind
    assert tuple(ELEMENTS) == ARRAY_ELEMENTS
    assert kind_of("character varying[]") == Kind.ARRAY + Kind.VARCHAR
    assert kind_of("varchar") == Kind.TEXT


def test_arrays_are_kinds_beyond_every_element() -> None:
    assert all(kind < Kind.ARRAY for kind in SPECS)
