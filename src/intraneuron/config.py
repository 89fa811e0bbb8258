"""Configuration: JSON-schema validation with defaults, and the config subsets each stage depends on.

The schema (workflow/schemas/config.schema.yaml) is the single place a parameter is documented;
this module fills defaults from it, turns schema violations into messages that name the key, and
hashes the subset of the config that each stage depends on (provenance and rerun triggers).
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration problem, phrased for the person who wrote the config."""


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _fill_defaults(schema: dict, value: Any) -> Any:
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    for key, sub in schema.get("properties", {}).items():
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            value[key] = _fill_defaults(sub, value[key])
    return value


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        keys = ", ".join(f"'{k}'" for k in extra)
        prefix = f"{where}." if error.absolute_path else ""
        return (
            f"unknown config key {keys} in {where}: remove it or fix its spelling "
            f"(allowed keys here: {allowed}); full key: {prefix}{extra[0]}"
        )
    return (
        f"config key '{where}': {error.message}. "
        "See config/README.md for what the key accepts."
    )


def validate(config: dict, schema: dict | None = None) -> dict:
    """Return a deep copy of `config` with defaults filled in; raise ConfigError naming the key."""
    schema = schema or load_schema()
    filled = _fill_defaults(schema, copy.deepcopy(config) if config else {})
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("; ".join(_describe(e) for e in errors[:5]))
    a = filled["analysis"]
    if a["max_clusters"] < a["min_clusters"]:
        raise ConfigError(
            f"config key 'analysis.max_clusters' ({a['max_clusters']}) is below "
            f"'analysis.min_clusters' ({a['min_clusters']}): raise max_clusters or lower min_clusters"
        )
    if filled["core_tokens"]["k"] < a["n_segments"] or filled["core_tokens"]["k"] < a["fine_segments"]:
        raise ConfigError(
            "config key 'core_tokens.k' must be at least analysis.n_segments and "
            "analysis.fine_segments so every activation segment holds a token"
        )
    return _sorted_keys(filled)


def _sorted_keys(value: Any) -> Any:
    """Dicts rebuilt in key order: Snakemake compares params by their repr, so the order in
    which a user happens to write keys must not trigger reruns."""
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def subset_hash(*parts: Any) -> str:
    """Stable short hash of config subsets (sorted JSON), recorded in every output."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def schema_markdown(schema: dict | None = None) -> str:
    """Render the schema as the reference table of config/README.md."""
    schema = schema or load_schema()
    lines = [
        "# Configuration reference",
        "",
        "Generated from `workflow/schemas/config.schema.yaml` by "
        "`python -m intraneuron.config --markdown`; do not edit by hand.",
        "",
        schema.get("description", ""),
        "",
        "| key | type | default | description |",
        "| --- | --- | --- | --- |",
    ]

    def walk(node: dict, prefix: str) -> None:
        for key, sub in node.get("properties", {}).items():
            name = f"{prefix}{key}"
            if sub.get("type") == "object" and "properties" in sub:
                lines.append(f"| **`{name}`** | section | | {_one_line(sub.get('description', ''))} |")
                walk(sub, f"{name}.")
                continue
            typ = sub.get("type") or " or ".join(
                str(o.get("type", "")) + (f" {o['enum']}" if "enum" in o else "")
                for o in sub.get("oneOf", [])
            )
            if isinstance(typ, list):
                typ = " or ".join(typ)
            if "enum" in sub:
                typ = f"{typ}: " + ", ".join(map(str, sub["enum"]))
            default = json.dumps(sub.get("default"))
            lines.append(f"| `{name}` | {typ} | `{default}` | {_one_line(sub.get('description', ''))} |")

    walk(schema, "")
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--markdown"]:
        sys.stdout.write(schema_markdown())
        return 0
    if len(argv) == 1:
        with open(argv[0], encoding="utf-8") as fh:
            validate(yaml.safe_load(fh) or {})
        print(f"{argv[0]}: valid")
        return 0
    print("usage: python -m intraneuron.config (--markdown | CONFIG.yaml)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
