"""Meltano lock files and the README's settings tables, generated from the plugins' `--about`.

Meltano reads `plugins/<type>/<name>--<variant>.lock` instead of asking the Hub, so `meltano install`
works offline. Writing them (or the README tables) by hand would let the documented settings drift from
the real ones; `--check` (run by the tests) fails when either is not what the plugins say today.
`make lockfiles` rewrites both.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from flx.scripts.about import about as flx_about

VARIANT = "flx"

PLUGINS = (
    (
        "extractors",
        "tap-flx",
        "tap_flx",
        "Execution history of flx and Meltano as incremental Singer streams.",
    ),
    ("loaders", "target-flx", "target_flx", "Exact, fast Singer → PostgreSQL loading with binary COPY."),
    ("utilities", "flx", "flx", "Runs Meltano jobs with retries, timeouts, history, validations and alerts."),
)

# target-flx's settings schema as singer-sdk builds it, read by the start-up path that skips the SDK.
CONFIG_SCHEMA = Path("target_flx") / "config_schema.json"

_KINDS = {"string": "string", "integer": "integer", "number": "decimal", "boolean": "boolean"}


def plugin_about(name: str) -> dict[str, Any]:
    """The plugin's own `--about --format json` (the flx utility's from `flx.scripts.about`)."""
    if name == "flx":
        return flx_about()
    executable = Path(sys.executable).with_name(name)
    done = subprocess.run(
        [str(executable), "--about", "--format", "json"], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout))


def setting(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """One JSON-Schema property as a Meltano setting definition."""
    types = schema.get("type", "string")
    kind_name = next((t for t in ([types] if isinstance(types, str) else types) if t != "null"), "string")
    definition: dict[str, Any] = {
        "name": name,
        "label": name.replace("_", " ").title().replace("Url", "URL").replace("Ssl", "SSL"),
        "kind": _KINDS.get(kind_name, kind_name),
    }
    if "description" in schema:
        definition["description"] = schema["description"]
    if schema.get("default") is not None:
        definition["value"] = schema["default"]
    if "enum" in schema:
        definition["kind"] = "options"
        definition["options"] = [{"label": str(v), "value": v} for v in schema["enum"] if v is not None]
    if schema.get("secret"):
        definition["sensitive"] = True
    return definition


def lock_definition(
    plugin_type: str, name: str, namespace: str, description: str, info: dict[str, Any] | None = None
) -> dict[str, Any]:
    info = info if info is not None else plugin_about(name)
    properties: dict[str, Any] = info["settings"].get("properties", {})
    return {
        "plugin_type": plugin_type,
        "name": name,
        "namespace": namespace,
        "variant": VARIANT,
        "label": name,
        "description": description,
        "pip_url": "flx[orchestrator]" if name == "flx" else "flx",
        "executable": name,
        "capabilities": sorted(info.get("capabilities", [])),
        "settings": [setting(key, value) for key, value in properties.items()],
    }


def lock_path(root: Path, plugin_type: str, name: str) -> Path:
    return root / "plugins" / plugin_type / f"{name}--{VARIANT}.lock"


def render(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def settings_table(definition: dict[str, Any]) -> str:
    """A markdown table of a plugin's settings, for the README."""
    rows = ["| setting | kind | default | description |", "|---|---|---|---|"]
    for item in definition["settings"]:
        kind = item["kind"] + (", secret" if item.get("sensitive") else "")
        if item["kind"] == "options":
            kind = " \\| ".join(f"`{o['value']}`" for o in item["options"])
        default = f"`{json.dumps(item['value'])}`" if "value" in item else ""
        description = item.get("description", "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{item['name']}` | {kind} | {default} | {description} |")
    return "\n".join(rows)


def with_tables(readme: str, definitions: list[dict[str, Any]]) -> str:
    """The README with each `<!-- settings:NAME -->` … `<!-- /settings:NAME -->` block regenerated."""
    for definition in definitions:
        start, end = f"<!-- settings:{definition['name']} -->", f"<!-- /settings:{definition['name']} -->"
        before, found, rest = readme.partition(start)
        if not found:
            continue
        _, _, after = rest.partition(end)
        readme = f"{before}{start}\n{settings_table(definition)}\n{end}{after}"
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the Meltano project (repo) root")
    parser.add_argument("--check", action="store_true", help="fail if a lock file is out of date")
    args = parser.parse_args(argv)
    stale = []
    infos = {plugin[1]: plugin_about(plugin[1]) for plugin in PLUGINS}
    definitions = [lock_definition(*plugin, info=infos[plugin[1]]) for plugin in PLUGINS]
    outputs = {lock_path(args.root, d["plugin_type"], d["name"]): render(d) for d in definitions}
    schema = infos["target-flx"]["settings"]
    outputs[args.root / CONFIG_SCHEMA] = json.dumps(schema, indent=1, sort_keys=True) + "\n"
    readme = args.root / "README.md"
    if readme.exists():
        outputs[readme] = with_tables(readme.read_text(), definitions)
    for path, text in outputs.items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print(f"out of date (run `make lockfiles`): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
