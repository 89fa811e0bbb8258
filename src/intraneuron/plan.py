"""The shard plan, computed from the config alone so a dry run never loads weights."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .convert import is_gguf_id, ready_checkpoint
from .models import (
    PACKAGE_PREFIX,
    ModelError,
    check_layers,
    model_shape,
    resolve_model_path,
)


@dataclass(frozen=True)
class Shard:
    layer: int
    block: int
    start: int
    stop: int


def local_model_path(model: dict) -> str | None:
    """The model's directory if it is available without any download, else None."""
    from pathlib import Path

    from huggingface_hub import snapshot_download

    model_id = model["id"]
    if is_gguf_id(model_id):
        return ready_checkpoint(model_id)  # None until the convert_gguf job has run
    if model_id.startswith(("package:", ".", "/", "~")) or Path(model_id).expanduser().is_dir():
        return resolve_model_path(model_id, model.get("revision"))  # errors name the fix
    try:
        return snapshot_download(model["id"], revision=model.get("revision"), local_files_only=True)
    except Exception:
        return None


def local_model_files(model: dict) -> list[str]:
    """The files of a model given as a local directory, as inputs of the jobs that read it, so
    weights changed in place rerun them. [] for hub models (pinned by `model.revision`, a params
    entry) and `package:` models (changed only by reinstalling their package)."""
    from pathlib import Path

    model_id = model["id"]
    root = Path(model_id).expanduser()
    if model_id.startswith(PACKAGE_PREFIX) or not root.is_dir():
        return []
    files = (p for p in root.rglob("*") if p.is_file())
    return sorted(str(p) for p in files
                  if not any(part.startswith(".") for part in p.relative_to(root).parts))


def neurons_per_layer(config: dict) -> int:
    """Neurons per layer to analyse, checked against the model when it is available locally.

    `n_neurons` from the config, else the MLP width read from the model's config.json. Layers and
    widths are checked here, before any job starts, whenever config.json can be read offline.
    """
    model = config["model"]
    path = local_model_path(model)
    if path is None:
        if config.get("n_neurons"):
            return int(config["n_neurons"])
        raise ModelError(
            f"model '{model['id']}' is not available locally, so its width is unknown: set "
            "n_neurons in the config (6400 for GPT-2 XL) to plan shards without it"
        )
    _, depth, width = model_shape(path, model.get("architecture", "auto"))
    check_layers(config["layers"], depth, model["id"])
    n = int(config.get("n_neurons") or width)
    if n > width:
        raise ModelError(f"n_neurons={n} exceeds the {width} MLP neurons per layer of "
                         f"'{model['id']}': lower n_neurons or set it to null")
    return n


def shards(config: dict, n_neurons: int) -> list[Shard]:
    size = int(config["block_size"])
    blocks = math.ceil(n_neurons / size)
    return [
        Shard(layer, b, b * size, min((b + 1) * size, n_neurons))
        for layer in config["layers"]
        for b in range(blocks)
    ]


def core_key(config: dict) -> str:
    """Folder name of a core-token selection: equal core_tokens settings, equal folder, so
    variants that keep them share one set of core-token jobs."""
    from .config import subset_hash

    core = config["core_tokens"]
    return f"k{core['k']}-{subset_hash(core)[:8]}"


# The analysis keys that decide a proxy's vectors (the embeddings job's settings).
PROXY_KEYS = ("proxy", "sentence_model", "wordnet_dir", "proxy_centering",
              "proxy_remove_directions")


def proxy_key(analysis: dict) -> str:
    """File name of a categorical proxy's vectors: the proxy, for the proxies that depend on
    another key (the sentence model, the WordNet folder) a hash of it, and the removal of
    common directions when there is one (`mean`, `abtt<n>`), so each is its own file."""
    from .config import subset_hash

    proxy = analysis["proxy"]
    source = {"sentence_model": "sentence_model", "wordnet": "wordnet_dir"}.get(proxy)
    key = f"{proxy}-{subset_hash(analysis[source])[:8]}" if source else proxy
    centering = analysis.get("proxy_centering", "none")
    if centering == "abtt":
        return f"{key}-abtt{analysis.get('proxy_remove_directions', 'auto')}"
    return key if centering == "none" else f"{key}-{centering}"


def ablated_layers(layers) -> list[int]:
    """The analysed layers whose next layer is analysed too: all but the last. The ablation
    stage measures a neuron on the next layer's neurons, so the last has none in the run."""
    return sorted({int(x) for x in layers})[:-1]
