"""The punq container: every long-lived piece of `flx`, built once at start-up from the settings.

punq is not thread-safe, so every singleton is resolved here, before any thread or signal handler exists.
Tests swap a piece in a `child()` container, with a real implementation (another database, a local
webhook), and resolve a fresh `Runner` from it.
"""

from __future__ import annotations

from datetime import timedelta
from types import TracebackType

import punq
from sqlalchemy import Engine

from flx.alerts.manager import AlertManager
from flx.config import FlxSettings
from flx.execution.dbretry import DatabaseRetry
from flx.execution.lease import Leases, LeaseTiming
from flx.execution.runner import Runner, RunnerFactory
from flx.oracle.manager import OracleConnectionManager
from flx.validation.runner import ValidationRunner
from flx_core import migrate
from flx_core.database import make_engine, resolve


class OracleSources(dict[str, OracleConnectionManager]):
    """The configured Oracle sources by name (punq keys must be types, so the names live here)."""


class FlxContainer(punq.Container):
    """A punq container that owns pools: `close()` (or `with`) releases the engine and Oracle pools."""

    def close(self) -> None:
        for manager in self.resolve(OracleSources).values():
            manager.close()
        self.resolve(Leases).engine.dispose()
        self.resolve(Engine).dispose()

    def __enter__(self) -> FlxContainer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def build_container(settings: FlxSettings) -> FlxContainer:
    """Wire settings → engine → leases, Oracle managers → validators, alerts → runner; upgrade the schema."""
    container = FlxContainer()
    container.register(FlxSettings, instance=settings)

    database = resolve(settings.database)
    engine = make_engine(database)
    migrate.ensure_schema(engine, database.control_schema)
    container.register(Engine, instance=engine)

    sources = OracleSources({name: OracleConnectionManager(s) for name, s in settings.oracle_sources.items()})
    container.register(OracleSources, instance=sources)

    container.register(ValidationRunner, instance=ValidationRunner(engine, sources))
    container.register(
        AlertManager,
        instance=AlertManager(
            engine,
            settings.alert_urls,
            timedelta(seconds=settings.alert_repeat_interval_seconds),
            {name: pipeline.alert_urls for name, pipeline in settings.pipelines.items()},
        ),
    )
    leases = Leases(engine, LeaseTiming.from_settings(settings))
    container.register(Leases, instance=leases)
    container.register(DatabaseRetry, instance=DatabaseRetry())
    container.register(
        Runner, scope=punq.Scope.singleton, leases=leases, db_retry=container.resolve(DatabaseRetry)
    )
    container.register(RunnerFactory, scope=punq.Scope.singleton)
    container.resolve(Runner)
    container.resolve(RunnerFactory)
    return container
