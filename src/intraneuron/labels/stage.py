"""The labelling stage: every labelled neuron's top-down clusters and coarse activation
segments named by an instruct model from their tokens, and whether a neuron's cluster labels
are distinct categories (the study asks its prompts for distinct ones)."""

from __future__ import annotations

import logging
import re
import time

import numpy as np
import pandas as pd

from .backends import make_backend
from .cache import AnswerCache, cached_answers
from .prompts import Prompts, default_prompts

log = logging.getLogger("intraneuron")


def clean_tokens(tokens, limit: int) -> list[str]:
    """Up to `limit` distinct, stripped, non-empty tokens in the given order."""
    out: list[str] = []
    for token in tokens:
        text = str(token).strip()
        if text and text not in out:
            out.append(text)
        if len(out) == limit:
            break
    return out


def select_neurons(tokens: pd.DataFrame, per_layer: int | None) -> pd.DataFrame:
    """The token rows of the first `per_layer` neurons of each layer (all with None)."""
    if not per_layer:
        return tokens
    keep = (tokens[["layer", "neuron"]].drop_duplicates().sort_values(["layer", "neuron"])
            .groupby("layer").head(int(per_layer)))
    return tokens.merge(keep, on=["layer", "neuron"])


def token_sets(tokens: pd.DataFrame, listed: int) -> pd.DataFrame:
    """One row per (layer, neuron, unit, index): a cluster's most central tokens, or a coarse
    segment's highest-ranked ones, as the words shown to the labeller."""
    rows = []
    for (layer, neuron), group in tokens.groupby(["layer", "neuron"], sort=True):
        for unit, column, order, ascending in (("cluster", "cluster", "centrality", False),
                                               ("segment", "segment", "rank", True)):
            for index, members in group.groupby(column, sort=True):
                ordered = members.sort_values(order, ascending=ascending, kind="stable")
                words = clean_tokens(ordered["token"], listed)
                rows.append({"layer": layer, "neuron": neuron, "unit": unit, "index": index,
                             "size": len(members), "tokens": ", ".join(words)})
    return pd.DataFrame(rows, columns=["layer", "neuron", "unit", "index", "size", "tokens"])


def label_table(sets: pd.DataFrame, backend, cache: AnswerCache,
                prompts: Prompts | None = None) -> tuple[pd.DataFrame, dict]:
    """`sets` with a `label` column; the stage's counts and throughput."""
    prompts = prompts or default_prompts()
    questions = [prompts.label_prompt(t.split(", ")) for t in sets["tokens"]]
    start = time.perf_counter()
    labels, asked = cached_answers(cache, backend.identity, prompts.key, questions,
                                   backend.labels, getattr(backend, "cache_chunk", 64))
    seconds = time.perf_counter() - start
    stats = {"labels": len(questions), "asked": asked, "seconds": seconds,
             "labels_per_s": asked / seconds if asked and seconds > 0 else float("nan")}
    log.info("labelled %d token sets (%d asked of the model, %.1f s)", len(questions), asked,
             seconds)
    return sets.assign(label=labels), stats


def same_category(label: str) -> str:
    """What two labels must share to name the same category: lower case, words only, a plural
    's' dropped ('animals' = 'Animal')."""
    words = re.findall(r"[a-z0-9]+", label.lower())
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
                    for w in words)


def distinctness(labels: pd.DataFrame) -> pd.DataFrame:
    """Per neuron: its clusters, how many distinct categories their labels name, and whether
    every cluster has its own (defined from 2 clusters on)."""
    clusters = labels[labels["unit"] == "cluster"]
    rows = []
    for (layer, neuron), group in clusters.groupby(["layer", "neuron"], sort=True):
        n = len(group)
        names = {same_category(x) for x in group["label"]}
        rows.append({"layer": layer, "neuron": neuron, "n_clusters": n,
                     "n_distinct_labels": len(names), "labels_distinct": len(names) == n,
                     "defined": n >= 2})
    return pd.DataFrame(rows, columns=["layer", "neuron", "n_clusters", "n_distinct_labels",
                                       "labels_distinct", "defined"])


def distinct_layers(neurons: pd.DataFrame) -> pd.DataFrame:
    """Per layer: the share of labelled neurons (with at least 2 clusters) whose cluster labels
    are distinct."""
    rows = []
    for layer, group in neurons.groupby("layer", sort=True):
        judged = group[group["defined"]]
        n_distinct = int(judged["labels_distinct"].sum())
        rows.append({"layer": layer, "n_labelled": len(group), "n_judged": len(judged),
                     "n_distinct": n_distinct,
                     "distinct_share": n_distinct / len(judged) if len(judged) else np.nan})
    return pd.DataFrame(rows, columns=["layer", "n_labelled", "n_judged", "n_distinct",
                                       "distinct_share"])


def label_model(tokens: pd.DataFrame, cfg: dict, backend=None,
                prompts: Prompts | None = None) -> tuple[dict[str, pd.DataFrame], dict]:
    """The stage's three tables for one model's tokens table, by table name (as the rule's
    outputs): labels, label_neurons, label_layers."""
    from ..analysis.columns import conform

    prompts = prompts or default_prompts()
    backend = backend or make_backend(cfg, prompts.label["max_new_tokens"])
    sets = token_sets(select_neurons(tokens, cfg["neurons"]), cfg["tokens_listed"])
    labels, stats = label_table(sets, backend, AnswerCache(cfg["cache"]), prompts)
    neurons = distinctness(labels)
    tables = {"labels": conform(labels, "labels"),
              "label_neurons": conform(neurons, "label_neurons"),
              "label_layers": conform(distinct_layers(neurons), "label_layers")}
    return tables, {**stats, "backend": backend.identity, "prompts": prompts.key}


def write_tables(tables: dict[str, pd.DataFrame], outputs: dict[str, str], meta: dict) -> None:
    """Each table to its path atomically, only once every label is in hand: a failed run leaves
    no table (and the cache only whole answers)."""
    from ..tables import atomic_parquet

    for name, frame in tables.items():
        atomic_parquet(frame, outputs[name], meta)
