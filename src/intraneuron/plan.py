"""The shard plan, computed from the config alone so a dry run never loads weights."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

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


def labeller_checkpoint(labels: dict, models: dict[str, dict], needed: bool) -> list[str]:
    """The local labeller's checkpoint folder as a job input (a converted GGUF model of this run
    is made by convert_gguf first); [] for a hub id, a server, or when nothing asks the labeller
    (`needed`: labelling on, or a variant with analysis.proxy: llm). A folder path that is
    neither here nor made by this run is refused before any job starts."""
    import os

    from .config import ConfigError
    from .convert import checkpoint_dir

    model = labels["model"]
    if not needed or labels["backend"] != "local":
        return []
    made = {str(checkpoint_dir(cfg["model"]["id"])) for cfg in models.values()
            if is_gguf_id(cfg["model"]["id"])}
    if model in made or os.path.isdir(model):
        return [model]
    if os.path.isabs(model) or model.startswith(".") or model.count("/") > 1:
        raise ConfigError(
            f"config key 'labels.model' is '{model}', a folder that does not exist here and "
            "that no model of this run converts: run `bash setup.sh demo` once (it converts "
            "SmolLM2-135M-Instruct to resources/models/), or set labels.model to a checkpoint "
            "folder or a hub id in the Hugging Face cache")
    return []


def neurons_per_layer(config: dict) -> int:
    """Neurons per layer to analyse, checked against the model when it is available locally.

    `n_neurons` from the config, else the MLP width read from the model's config.json (or a GGUF
    file's header). Layers, widths, the window length and the results folder are checked here,
    before any job starts, whenever the model can be read offline.
    """
    model = config["model"]
    check_results_outside_model(config["results"], model["id"])
    if is_gguf_id(model["id"]) and ready_checkpoint(model["id"]) is None:
        return _gguf_neurons(config)
    path = local_model_path(model)
    if path is None:
        if config.get("n_neurons"):
            return int(config["n_neurons"])
        raise ModelError(not_found_message(model))
    depth, width, positions = checked_shape(path, model)
    return _checked_width(config, depth, width, positions)


def _checked_width(config: dict, depth: int, width: int, positions: int | None) -> int:
    model = config["model"]
    check_layers(config["layers"], depth, model["id"])
    check_window(config["corpus"]["window_tokens"], positions, model["id"])
    n = int(config.get("n_neurons") or width)
    if n > width:
        raise ModelError(f"n_neurons={n} exceeds the {width} MLP neurons per layer of "
                         f"'{model['id']}': lower n_neurons or set it to null")
    return n


def _gguf_neurons(config: dict) -> int:
    """A GGUF model not converted yet: its shape from the file's header, so a wrong file name or
    layers beyond its depth are found now, not after the conversion and the corpus stage."""
    from .convert import ConversionError, gguf_header, gguf_source

    try:
        header = gguf_header(gguf_source(config["model"]["id"]))
    except ConversionError as exc:
        raise ModelError(str(exc)) from None
    if header["blocks"] is None or header["width"] is None:
        if config.get("n_neurons"):
            return int(config["n_neurons"])
        raise ModelError(f"model.id '{config['model']['id']}': the GGUF header names no block "
                         "count or MLP width; set n_neurons to plan without them")
    return _checked_width(config, header["blocks"], header["width"], header["positions"])


def checked_shape(path: str, model: dict) -> tuple[int, int, int | None]:
    """(blocks, MLP width, position limit) of a local model, with a `model.architecture` that
    does not fit the model named as a config error instead of a traceback."""
    from .models import ARCHITECTURES, ConfigFile

    requested = model.get("architecture", "auto")
    cfg = ConfigFile(path)
    owner = next((n for n, a in ARCHITECTURES.items() if cfg.model_type in a.model_types), None)
    if requested != "auto" and owner not in (None, requested):
        raise ModelError(
            f"config key 'model.architecture' is '{requested}', but '{model['id']}' is a "
            f"{cfg.model_type} model (config.json), which the '{owner}' adapter reads: set "
            f"model.architecture to auto or {owner}")
    try:
        _, depth, width = model_shape(path, requested, cfg)
    except (AttributeError, KeyError, TypeError) as exc:
        raise ModelError(
            f"config key 'model.architecture' is '{requested}', whose layout does not fit "
            f"'{model['id']}' (model_type {cfg.model_type}: {exc}); set model.architecture "
            "to auto, or to the adapter whose MLP layout this model has") from None
    return depth, width, max_positions(cfg)


def max_positions(cfg) -> int | None:
    """The model's position limit from its config (GPT-2 `n_positions`, most others
    `max_position_embeddings`), or None where it states none."""
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(cfg, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def check_window(window_tokens: int, positions: int | None, model_id: str) -> None:
    """Windows longer than the model's positions crash extraction (an IndexError in the
    position embedding) after the corpus stage; refuse them at plan time."""
    if positions is not None and window_tokens > positions:
        raise ModelError(
            f"config key 'corpus.window_tokens' is {window_tokens}, but '{model_id}' has "
            f"{positions} positions (its config.json): set corpus.window_tokens to at most "
            f"{positions} (less the special tokens its tokenizer adds around a window)")


def check_results_outside_model(results: str, model_id: str) -> None:
    """Results written inside a local model's folder become files of the model, which every job
    that reads the model takes as input: a cycle. Refuse it."""
    folder = Path(model_id).expanduser()
    if model_id.startswith(PACKAGE_PREFIX) or not folder.is_dir():
        return
    inside = Path(results).expanduser().resolve()
    if inside == folder.resolve() or folder.resolve() in inside.parents:
        raise ModelError(
            f"config key 'results' ('{results}') is inside the model's folder (model.id "
            f"'{model_id}'): the results would become files of the model and rerun every job "
            "that reads it; set results to a folder outside the model's, e.g. results/<name>")


def not_found_message(model: dict) -> str:
    """Why a model id names nothing that can be read offline, with what was looked for: a
    typo in the id is the likeliest cause, so the id leads the message."""
    from huggingface_hub import constants

    model_id = model["id"]
    offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
    return (
        f"model.id '{model_id}' was not found: there is no folder {Path(model_id).resolve()} "
        f"and no '{model_id}' in the Hugging Face cache {constants.HF_HUB_CACHE}{offline}. "
        f"Check the spelling of model.id; if it is right, download the model once "
        f"(`hf download {model_id}`), or set n_neurons to plan the shards without it"
    )


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


def proxy_key(analysis: dict, core: str = "") -> str:
    """File name of a categorical proxy's vectors: the proxy, for the proxies that depend on
    another key (the sentence model, the WordNet folder) a hash of it, for the llm proxy the
    core-token folder whose eligible tokens it sorts (`llm-<core>`), and the removal of common
    directions when there is one (`mean`, `abtt<n>`), so each is its own file."""
    from .config import subset_hash

    proxy = analysis["proxy"]
    if proxy == "llm":
        return f"llm-{core}"
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


@dataclass(frozen=True)
class RunPlan:
    """What a workflow run is made of, from the config alone: the validated config, every
    (model, variant)'s merged settings, each model's base settings, width, shards and whether
    it has an ablation stage."""

    config: dict
    runs: dict[str, dict[str, dict]]
    models: dict[str, dict]
    n_neurons: dict[str, int]
    shards: dict[str, list[Shard]]
    variants: list[str]
    ablated: dict[str, list[int]]


def plan_run(config: dict) -> RunPlan:
    """Validate `config`, merge each model's and variant's overrides over the top level, and
    check every model that can be read offline; ConfigError or ModelError name the problem."""
    from .config import BASE_VARIANT, run_configs, validate

    validated = validate(config)
    runs = run_configs(validated)
    models = {name: variants[BASE_VARIANT] for name, variants in runs.items()}
    n_neurons = {name: neurons_per_layer(cfg) for name, cfg in models.items()}
    ablated = {name: ablated_layers(cfg["layers"]) for name, cfg in models.items()
               if cfg["ablation"]["enabled"] and ablated_layers(cfg["layers"])}
    return RunPlan(
        config=validated, runs=runs, models=models, n_neurons=n_neurons,
        shards={name: shards(cfg, n_neurons[name]) for name, cfg in models.items()},
        variants=sorted({v for variants in runs.values() for v in variants}), ablated=ablated)
