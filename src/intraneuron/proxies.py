"""Categorical-proximity proxies: one vector per token id, compared by cosine similarity.

`input_embeddings` is the paper's choice (the model's own input token embeddings). A sentence
model's embedding of each token's decoded text is an independent proxy, so a finding can be
checked for dependence on one embedding space; WordNet's supersenses (`wordnet`) are
human-curated categories that no embedding shaped.
"""

from __future__ import annotations

import numpy as np
import torch

from .models import load_model, load_tokenizer, resolve_model_path


def input_embeddings(model: dict) -> tuple[np.ndarray, dict]:
    loaded = load_model({**model, "device": "cpu", "dtype": "float32"}, [0])
    matrix = loaded.input_embeddings().float().numpy()
    return matrix, {"model_id": model["id"], "dim": matrix.shape[1]}


def sentence_embeddings(model: dict, sentence_model: str, batch: int = 512) -> tuple[np.ndarray, dict]:
    """Mean-pooled last hidden state of `sentence_model` over each token's decoded text."""
    from transformers import AutoModel

    tokenizer = load_tokenizer(resolve_model_path(model["id"], model.get("revision")))
    texts = [tokenizer.decode([i]).strip() or tokenizer.convert_ids_to_tokens(i)
             for i in range(len(tokenizer))]
    path = resolve_model_path(sentence_model)
    enc_tok = load_tokenizer(path)
    enc = AutoModel.from_pretrained(path).eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            inputs = enc_tok(texts[i:i + batch], padding=True, truncation=True, max_length=16,
                             return_tensors="pt")
            hidden = enc(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    matrix = np.concatenate(out).astype(np.float32)
    return matrix, {"model_id": model["id"], "sentence_model": sentence_model, "dim": matrix.shape[1]}


def token_texts(model: dict) -> list[str]:
    """The decoded text of every token id of the model's tokenizer."""
    tokenizer = load_tokenizer(resolve_model_path(model["id"], model.get("revision")))
    return [tokenizer.decode([i]) for i in range(len(tokenizer))]


def wordnet_supersenses(model: dict, directory: str) -> tuple[np.ndarray, dict]:
    """Each token's WordNet supersense indicator (`intraneuron.wordnet`); zero vectors for
    tokens that are not English words in WordNet."""
    from .wordnet import load

    matrix = load(directory).matrix(token_texts(model))
    covered = float(np.mean(np.any(matrix != 0, axis=1)))
    return matrix, {"model_id": model["id"], "wordnet_dir": directory, "dim": matrix.shape[1],
                    "vocabulary_coverage": covered}
