"""The configuration as a reader should see it: the keys that applied to this run, and no path
of the machine it ran on.

The full config carries every schema default, including settings of options the run did not
use (a Hugging Face dataset name for a WordNet corpus, HDBSCAN's cluster size for hierarchical
clustering); printing them suggests they were used. `APPLIES` names, per such key, the choice
that makes it apply.
"""

from __future__ import annotations

import copy
from pathlib import PurePath

import yaml


def _is(section: str, key: str, *values):
    return lambda c: c.get(section, {}).get(key) in values


def _not(section: str, key: str, *values):
    return lambda c: c.get(section, {}).get(key) not in values


def _chosen_count(c: dict) -> bool:
    a = c.get("analysis", {})
    return a.get("clustering") != "hdbscan" and a.get("n_clusters") == "auto"


APPLIES = {
    ("model", "init_seed"): _is("model", "weights", "random"),
    ("corpus", "dataset"): _is("corpus", "source", "huggingface"),
    ("corpus", "dataset_config"): _is("corpus", "source", "huggingface"),
    ("corpus", "split"): _is("corpus", "source", "huggingface"),
    ("corpus", "path"): _not("corpus", "source", "huggingface"),
    ("corpus", "text_field"): _is("corpus", "source", "jsonl", "parquet", "huggingface"),
    ("analysis", "sentence_model"): _is("analysis", "proxy", "sentence_model"),
    ("analysis", "wordnet_dir"): lambda c: (c.get("analysis", {}).get("proxy") == "wordnet"
                                            or c.get("corpus", {}).get("source") == "wordnet"),
    ("analysis", "min_proxy_coverage"): _is("analysis", "proxy", "wordnet"),
    ("analysis", "hdbscan_min_cluster_size"): _is("analysis", "clustering", "hdbscan"),
    ("analysis", "linkage"): _is("analysis", "clustering", "hierarchical"),
    ("analysis", "n_clusters"): _not("analysis", "clustering", "hdbscan"),
    ("analysis", "cluster_selection"): _chosen_count,
    ("analysis", "min_clusters"): _chosen_count,
    ("analysis", "max_clusters"): _chosen_count,
    ("analysis", "distance_threshold"): lambda c: _chosen_count(c) and c["analysis"].get(
        "cluster_selection") == "distance_threshold",
    ("analysis", "selectivity_fraction"): _is("analysis", "selectivity", "fraction"),
    ("analysis", "min_tokens"): _not("analysis", "selectivity", "none"),
}
# whole sections that apply only when switched on; `models`/`variants` describe other pages
SECTION_APPLIES = {
    "openai_comparison": lambda c: bool(c.get("openai_comparison", {}).get("directory")),
    "ablation": lambda c: bool(c.get("ablation", {}).get("enabled")),
    "models": lambda c: False,
    "variants": lambda c: False,
}


def _local(value):
    """An absolute local path shortened to its last part (the reader's machine differs)."""
    if isinstance(value, str) and (value.startswith("/") or value.startswith("~")):
        return f"…/{PurePath(value).name}"
    if isinstance(value, dict):
        return {k: _local(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_local(v) for v in value]
    return value


def as_used(config: dict) -> dict:
    """The config without the keys that did not apply and without local absolute paths."""
    out = copy.deepcopy(config)
    for section, applies in SECTION_APPLIES.items():
        if section in out and not applies(config):
            del out[section]
    for (section, key), applies in APPLIES.items():
        if key in out.get(section, {}) and not applies(config):
            del out[section][key]
    return _local(out)


def as_yaml(config: dict) -> str:
    return yaml.safe_dump(as_used(config), sort_keys=False, allow_unicode=True)
