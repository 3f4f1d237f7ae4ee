"""What a Meltano project is made of, as flx records it: each job's blocks and the project's plugins.

Recorded with every run in `flx.pipeline_steps` and `flx.plugins` (and so exported by tap-flx), so the
history says which plugins a pipeline ran, in which order, and where they came from. Setting values are
never recorded, only their names: meltano.yml may hold secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

PLUGIN_TYPES = ("extractors", "loaders", "utilities", "mappers", "transformers", "orchestrators", "files")
_SINGULAR = {
    "extractors": "extractor",
    "loaders": "loader",
    "utilities": "utility",
    "mappers": "mapper",
    "transformers": "transformer",
    "orchestrators": "orchestrator",
    "files": "file",
}


class PluginInfo(BaseModel):
    """One plugin of meltano.yml (a mapper's mappings are plugins of their own: they are blocks)."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    namespace: str | None = None
    variant: str | None = None
    pip_url: str | None = None
    settings: tuple[str, ...] = ()  # the names configured in meltano.yml; never their values

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "namespace": self.namespace,
            "variant": self.variant,
            "pip_url": self.pip_url,
            "config": {"settings": list(self.settings)},
        }


def plugin_infos(document: Mapping[str, Any]) -> tuple[PluginInfo, ...]:
    found: list[PluginInfo] = []
    for kind in PLUGIN_TYPES:
        for plugin in (document.get("plugins") or {}).get(kind) or []:
            if not (isinstance(plugin, dict) and plugin.get("name")):
                continue
            config = plugin.get("config")
            info = PluginInfo(
                name=str(plugin["name"]),
                type=_SINGULAR[kind],
                namespace=_text(plugin.get("namespace")),
                variant=_text(plugin.get("variant")),
                pip_url=_text(plugin.get("pip_url")),
                settings=tuple(sorted(str(k) for k in config)) if isinstance(config, dict) else (),
            )
            found.append(info)
            for mapping in plugin.get("mappings") or []:
                if isinstance(mapping, dict) and mapping.get("name"):
                    found.append(info.model_copy(update={"name": str(mapping["name"]), "settings": ()}))
    return tuple(found)


def job_blocks(job: Mapping[str, Any]) -> tuple[str, ...]:
    """A job's blocks in order: its tasks are a string, a list of strings, or a list of such lists."""
    blocks: list[str] = []

    def add(task: Any) -> None:
        if isinstance(task, str):
            blocks.extend(task.split())
        elif isinstance(task, list):
            for part in task:
                add(part)

    add(job.get("tasks"))
    return tuple(blocks)


def block_plugin(block: str) -> str:
    """The plugin a block runs: `dbt:run` is the `run` command of plugin `dbt`."""
    return block.split(":", 1)[0]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
