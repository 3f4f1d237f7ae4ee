"""singer-sdk's standard tap tests against a seeded control schema in the real test database.

Excluded: none. The suite's sync is a full sync of every stream; each stream has rows (the seed covers
every table), so `returns_record` and the per-attribute tests all run on real values.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from singer_sdk.testing import get_tap_test_class
from sqlalchemy import Engine

from tap_flx.tap import TapFlx
from tests.tap.conftest import seed_history

# Completed before the first test runs: the suite builds its runner (and discovers the streams, which needs
# no database) at import. Never empty: the runner keeps this very dict only when it is truthy.
CONFIG: dict[str, Any] = {"cursor_batch_rows": 1_000}


@pytest.fixture(autouse=True, scope="module")
def _point_at_seeded_schema(tap_config: dict[str, Any], control_engine: Engine) -> Iterator[None]:
    seed_history(control_engine)
    CONFIG.update(tap_config)
    yield


TestTapFlxStandard = get_tap_test_class(TapFlx, config=CONFIG)
