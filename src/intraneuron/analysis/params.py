"""Analysis parameters: defaults and validation, both taken from the workflow's JSON schema.

The schema's `analysis` section is the one place these parameters are documented and bounded;
Python callers get the same defaults and the same errors as a Snakemake run.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from ..config import load_schema

_SCHEMA = load_schema()["properties"]["analysis"]
# Keys that choose the similarity proxy upstream; the analysis itself never reads them.
_UPSTREAM = ("proxy", "sentence_model", "wordnet_dir", "proxy_centering",
             "proxy_remove_directions")

DEFAULT_PARAMS: dict[str, Any] = {
    key: spec["default"] for key, spec in _SCHEMA["properties"].items() if key not in _UPSTREAM
}


def resolve_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by `params`; values the schema rejects raise ValueError.

    The proxy keys of the workflow's `analysis` section are accepted and dropped.
    """
    merged = {**DEFAULT_PARAMS, **(params or {})}
    try:
        jsonschema.validate(merged, _SCHEMA)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "analysis"
        raise ValueError(f"analysis parameter '{where}': {exc.message}") from exc
    if merged["max_clusters"] < merged["min_clusters"]:
        raise ValueError("analysis parameter 'max_clusters' must be >= 'min_clusters'")
    return {key: merged[key] for key in DEFAULT_PARAMS}
