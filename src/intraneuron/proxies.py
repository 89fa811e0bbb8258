"""Categorical-proximity proxies: one vector per token id, compared by cosine similarity.

`input_embeddings` is the paper's choice (the model's own input token embeddings). A sentence
model's embedding of each token's decoded text is an independent proxy, so a finding can be
checked for dependence on one embedding space; WordNet's supersenses (`wordnet`) are
human-curated categories that no embedding shaped, and so are an instruct model's categories
(`llm`: prompt-based segmentation, which also sorts the tokens WordNet lacks).

Token-embedding spaces are anisotropic: a few common directions (the mean vector first) carry
much of every vector, so every cosine is high and clusters split off outliers rather than
categories (Ethayarajh 2019; Mu & Viswanath 2018). `remove_common_directions` offers the
standard remedies as `analysis.proxy_centering`: subtract the mean vector, or "all-but-the-top"
(subtract the mean, then project out the top principal directions). The paper's raw cosine
(`none`) stays the default.
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


def llm_categories(model: dict, categories_path: str) -> tuple[np.ndarray, dict]:
    """Each token's prompt-based category indicator (`intraneuron.labels.categories`): the
    closed list's order gives the columns; tokens that were not sorted (not eligible to be core
    tokens) get the zero vector."""
    import pandas as pd

    from .labels.prompts import default_prompts

    table = pd.read_parquet(categories_path)
    names = default_prompts().categories
    unknown = sorted(set(table["category"]) - set(names))
    if unknown:
        raise ValueError(f"{categories_path}: categories {unknown} are not in the prompts file's "
                         "list; rerun the categorize rule (its prompts are an input)")
    size = len(load_tokenizer(resolve_model_path(model["id"], model.get("revision"))))
    matrix = np.zeros((size, len(names)), dtype=np.float32)
    column = {name: i for i, name in enumerate(names)}
    matrix[table["token_id"].to_numpy(), [column[c] for c in table["category"]]] = 1.0
    return matrix, {"model_id": model["id"], "dim": len(names), "categories": names,
                    "vocabulary_coverage": float(np.mean(np.any(matrix != 0, axis=1)))}


def removed_directions(centering: str, requested: int | str, dim: int) -> int:
    """How many principal directions `abtt` projects out: the configured number, or for
    `auto` Mu & Viswanath's rule of thumb, about one per 100 dimensions (at least 1)."""
    if centering != "abtt":
        return 0
    count = max(1, round(dim / 100)) if requested == "auto" else int(requested)
    if not 0 <= count < dim:
        raise ValueError(f"analysis.proxy_remove_directions = {requested}: the proxy has {dim} "
                         f"dimensions, so at most {dim - 1} directions can be removed")
    return count


def remove_common_directions(matrix: np.ndarray, centering: str,
                             n_directions: int | str = "auto") -> tuple[np.ndarray, dict]:
    """The proxy vectors with their common directions removed (`analysis.proxy_centering`).

    `mean`: every row minus the mean row over the vocabulary. `abtt` (all-but-the-top): the
    mean removed, then the projection on the top `n_directions` principal directions of the
    centred rows (eigenvectors of their d x d scatter matrix, in float64). `none`: unchanged.
    Returns float32 vectors and attributes recording what was removed.
    """
    if centering == "none":
        return matrix, {"centering": "none"}
    x = np.asarray(matrix, dtype=np.float64)
    mean = x.mean(axis=0)
    x = x - mean
    attrs = {"centering": centering, "mean_norm": float(np.linalg.norm(mean))}
    count = removed_directions(centering, n_directions, x.shape[1])
    if count:
        values, vectors = np.linalg.eigh(x.T @ x)
        top = vectors[:, np.argsort(values)[::-1][:count]]
        x = x - (x @ top) @ top.T
        share = values[np.argsort(values)[::-1][:count]] / values.sum()
        attrs.update(removed_directions=count,
                     removed_variance_share=[float(v) for v in share])
    return x.astype(np.float32), attrs
