"""The `target-flx` command: a load starts without importing singer-sdk's Target.

Meltano runs `target-flx --config FILE` for every job, often every few minutes; importing singer-sdk
(and SQLAlchemy with it) was most of a small run's time. That case is handled here: the settings are
checked against the schema singer-sdk builds for target-flx (`config_schema.json`, written and checked
by `make lockfiles`), logging is set up as singer-sdk sets it up, and the load runs. Everything else
(`--about`, `--help`, `--version`, stream maps and flattening, `--config ENV`) goes to the SDK's CLI.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from importlib import resources
from typing import Any

import target_flx


def main() -> None:
    paths = _config_paths(sys.argv[1:])
    config = _read_configs(paths) if paths is not None else None
    if config is None or _needs_sdk(config):
        from target_flx.target import TargetFlx

        TargetFlx.cli()
        return
    target_flx.LEAN = True
    _run(config)


def _config_paths(argv: list[str]) -> list[str] | None:
    """The files of `--config FILE …` when that is all the command line says, else None."""
    paths = []
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            path = next(args, None)
            if path is None or path == "ENV":
                return None
            paths.append(path)
        elif arg.startswith("--config="):
            paths.append(arg.removeprefix("--config="))
        else:
            return None
    return paths or None


def _read_configs(paths: list[str]) -> dict[str, Any] | None:
    """The merged config files; None (the SDK then reports it) when one cannot be read."""
    config: dict[str, Any] = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                loaded = json.load(f)
        except (OSError, ValueError):
            return None
        if not isinstance(loaded, dict):
            return None
        config.update(loaded)
    return config


def _needs_sdk(config: dict[str, Any]) -> bool:
    """Stream maps and flattening run through singer-sdk's mapper."""
    return bool(config.get("stream_maps") or config.get("flattening_enabled"))


def config_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        resources.files(target_flx).joinpath("config_schema.json").read_text()
    )
    return schema


def _run(config: dict[str, Any]) -> None:
    _setup_logging()
    log = logging.getLogger("target-flx")
    from target_flx import log_format
    from target_flx.cancel import Cancelled
    from target_flx.errors import TargetError, debugging

    try:
        from flx_core.settings import SettingsError
        from target_flx.cancel import cancel_on_signals, stop_after_the_load
        from target_flx.run import LoadRun
        from target_flx.setting_names import check_names
        from target_flx.setting_types import check_types

        schema = config_schema()
        check_names(config, schema.get("properties", {}))
        config = check_types(config, schema)

        cancel_on_signals()
        log.info("target-flx v%s", _version())
        counts = LoadRun(config).process(sys.stdin)
        stop_after_the_load()
        log.info(
            "Processed %d messages (%d records, %d schemas, %d states, %d batch manifests)",
            sum(counts.values()),
            counts["RECORD"],
            counts["SCHEMA"],
            counts["STATE"],
            counts["BATCH"],
        )
    except (TargetError, SettingsError) as exc:
        if debugging():
            raise
        if log_format.json_wanted():
            logging.getLogger("target-flx").error("target-flx: error: %s", exc)
        else:
            sys.stderr.write(f"target-flx: error: {exc}\n")
        sys.exit(143 if isinstance(exc, Cancelled) else 1)


def _setup_logging() -> None:
    from target_flx import log_format

    log_format.setup(os.environ.get("TARGET_FLX_LOGLEVEL") or os.environ.get("LOGLEVEL") or "INFO")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flx")
    except PackageNotFoundError:
        return "unknown"
