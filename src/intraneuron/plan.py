"""The shard plan, computed from the config alone so a dry run never loads weights."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .models import ModelError, model_shape, resolve_model_path


@dataclass(frozen=True)
class Shard:
    layer: int
    block: int
    start: int
    stop: int


def neurons_per_layer(config: dict) -> int:
    """`n_neurons` from the config, else the MLP width read from the model's config.json."""
    if config.get("n_neurons"):
        return int(config["n_neurons"])
    model = config["model"]
    try:
        path = resolve_model_path(model["id"], model.get("revision"))
    except ModelError as exc:
        raise ModelError(
            f"{exc}. To plan shards without the model, set n_neurons in the config "
            "(6400 for GPT-2 XL)"
        ) from exc
    return model_shape(path, model.get("architecture", "auto"))[2]


def shards(config: dict, n_neurons: int) -> list[Shard]:
    size = int(config["block_size"])
    blocks = math.ceil(n_neurons / size)
    return [
        Shard(layer, b, b * size, min((b + 1) * size, n_neurons))
        for layer in config["layers"]
        for b in range(blocks)
    ]
