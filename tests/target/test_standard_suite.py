"""singer-sdk's standard target tests, against the real database.

Excluded: none of the default suite; the only setting changed is sanitize_null_text_characters
(below). `TargetMultipleStateMessages` is not in singer-sdk's default suite
(it asserts which STATEs the SDK's drain-on-full-sink batching happens to emit); target-flx's own STATE
rule (emit once every earlier record is committed) is tested in test_state.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from singer_sdk.testing import get_target_test_class
from sqlalchemy.engine import URL

from flx_core.settings import libpq_conninfo
from target_flx.target import TargetFlx

# `encoded_string_data` sends a NUL (U+0000) in text, which target-flx refuses by default (PostgreSQL text
# cannot hold it); the suite runs with sanitizing on, and test_errors.py covers the default.
CONFIG: dict[str, Any] = {
    "default_target_schema": f"sdk_suite_{uuid.uuid4().hex[:8]}",
    "sanitize_null_text_characters": True,
}


@pytest.fixture(autouse=True, scope="module")
def _point_at_test_database(db_config: dict[str, str], database_url: URL) -> Iterator[None]:
    CONFIG.update(db_config)
    yield
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{CONFIG["default_target_schema"]}" CASCADE')


TestTargetFlxStandard = get_target_test_class(TargetFlx, config=CONFIG)
