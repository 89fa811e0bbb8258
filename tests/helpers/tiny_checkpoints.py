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
