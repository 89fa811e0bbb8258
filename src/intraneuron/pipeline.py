"""One function per workflow stage, from input paths to output paths.

The Snakemake scripts only unpack `snakemake.input/output/params` and call these, so every stage
can be run and tested without Snakemake.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import h5io
from .config import subset_hash
from .core_tokens import contexts, document_spans, select_core_tokens
from .corpus import read_tokens
from .faults import kill_point
from .runtime import package_versions
from .tables import atomic_parquet

log = logging.getLogger("intraneuron")


def parse_scatteritem(item: str) -> tuple[int, int]:
    """'2-of-4' → (1, 4): zero-based chunk index and chunk count."""
    m = re.fullmatch(r"(\d+)-of-(\d+)", item)
    if not m:
        raise ValueError(f"unexpected scatter item '{item}'")
    return int(m.group(1)) - 1, int(m.group(2))


def flat_column(table, name: str) -> np.ndarray:
    """All values of a list column, concatenated in window order, without Python objects."""
    return table.column(name).combine_chunks().flatten().to_numpy()


def corpus_arrays(tokens_path: str) -> tuple[list[np.ndarray], np.ndarray, dict]:
    from .extract import window_offsets

    table, meta = read_tokens(tokens_path)
    lengths = table.column("n_tokens").to_numpy().astype(np.int64)
    offsets = window_offsets(lengths)
    flat = flat_column(table, "input_ids").astype(np.int64)
    windows = [flat[a:a + n] for a, n in zip(offsets, lengths, strict=True)]
    return windows, offsets, meta


def extract_chunk(tokens_path: str, out_path: str, extraction: dict, *, device: str,
                  batch_tokens: int, chunk: int, chunks: int) -> None:
    import torch

    from .extract import chunk_batches, extract_statistics
    from .models import describe_model, load_model

    windows, offsets, meta = corpus_arrays(tokens_path)
    lengths = np.array([len(w) for w in windows], dtype=np.int64)
    batches = chunk_batches(lengths, batch_tokens, chunks, chunk)
    layers = extraction["layers"]
    loaded = load_model({**extraction["model"], "dtype": extraction["dtype"], "device": device},
                        layers)
    log.info("model %s on %s (%s, %d CPU threads); chunk %d of %d: %d batches, %d of %d windows",
             extraction["model"]["id"], loaded.device, loaded.dtype, torch.get_num_threads(),
             chunk + 1, chunks, len(batches), sum(len(b) for b in batches), len(windows))
    n = extraction["n_neurons"]
    if n > loaded.n_neurons:
        raise ValueError(f"n_neurons={n} exceeds the model's {loaded.n_neurons} neurons per layer: "
                         "lower n_neurons or set it to null")
    skip = extraction.get("skip_first_positions", 0)  # absent (= 0) keeps older cache keys
    stats, total = extract_statistics(loaded, layers, windows, offsets, batch_tokens=batch_tokens,
                                      batches=batches, n_neurons=n, skip_first=skip,
                                      emit=log.info)
    h5io.write_stats(out_path, stats, {
        **describe_model(loaded, extraction["model"]),
        "corpus_hash": meta.get("corpus_hash", ""),
        "config_hash": subset_hash(extraction),
        "chunk": chunk, "chunks": chunks, "batches": len(batches),
        "token_count": total, "neuron_start": 0, "neuron_stop": n,
        "skip_first_positions": skip,
        "versions": package_versions(),
    })


def reduce_chunks(chunk_paths: list[str], out_path: str, layer: int) -> None:
    """Exact merge of one layer over corpus chunks (given in chunk order)."""
    from .running_stats import empty_compact, fold_into

    ids = np.unique(np.concatenate([h5io.read_token_ids(p, layer) for p in chunk_paths]))
    out, attrs, total = None, {}, 0
    for path in chunk_paths:
        part, attrs = h5io.read_stats(path, layer)
        out = out if out is not None else empty_compact(ids, part.sum.shape[1])
        fold_into(out, part)
        total += int(attrs["token_count"])
    attrs = {k: v for k, v in attrs.items() if k not in ("chunk", "batches",
                                                         "complete", "layers", "format_version")}
    h5io.write_stats(out_path, {layer: out}, {**attrs, "token_count": total, "layer": layer})


def core_token_shard(stats_path: str, tokens_path: str, out_path: str, core: dict,
                     layer: int, start: int, stop: int, model: dict) -> None:
    from .extract import window_offsets
    from .models import load_tokenizer, resolve_model_path, special_token_ids

    stats, attrs = h5io.read_stats(stats_path, layer, slice(start, stop))
    tokenizer = load_tokenizer(resolve_model_path(model["id"], model["revision"]))
    excluded = special_token_ids(tokenizer) if core["exclude_special"] else []
    sel = select_core_tokens(stats, core["k"], core["min_count"], excluded)
    table, _ = read_tokens(tokens_path)
    flat_ids = flat_column(table, "input_ids")
    doc_ids = flat_column(table, "doc_ids")
    lengths = table.column("n_tokens").to_numpy().astype(np.int64)
    span_start, span_stop = document_spans(doc_ids, window_offsets(lengths))
    left, right = contexts(sel.argmax, flat_ids, span_start, span_stop, core["context_tokens"],
                           tokenizer.decode)
    decoded = decode_tokens(tokenizer, sel.token_ids)
    h5io.write_arrays(out_path, {
        "neurons": np.arange(start, stop, dtype=np.int32),
        "token_ids": sel.token_ids, "tokens": decoded, "mean": sel.mean, "max": sel.max,
        "count": sel.count, "position": sel.argmax, "context_left": left, "context_right": right,
        "boundary_ties": sel.boundary_ties, "eligible": sel.eligible,
        "eligible_tokens": decode_tokens(tokenizer, sel.eligible),
    }, {**attrs, "neuron_start": start, "neuron_stop": stop, "n_eligible": sel.n_eligible,
        "config_hash": subset_hash(core, model, attrs.get("config_hash"))})


def eligible_vocabulary(stats_path: str, layer: int, core: dict,
                        model: dict) -> tuple[np.ndarray, np.ndarray]:
    """The token ids (and texts) that may be core tokens under `core`, as every core-token
    shard of the selection finds them (`eligible` of its file): for the prompt-based
    categories, which must not wait on a shard job."""
    from .core_tokens import eligible_rows
    from .models import load_tokenizer, resolve_model_path, special_token_ids

    stats, _ = h5io.read_stats(stats_path, layer, slice(0, 1))
    tokenizer = load_tokenizer(resolve_model_path(model["id"], model["revision"]))
    excluded = special_token_ids(tokenizer) if core["exclude_special"] else []
    ids = stats.token_ids[eligible_rows(stats, core["min_count"], excluded)].astype(np.int32)
    return ids, decode_tokens(tokenizer, ids)


def decode_tokens(tokenizer, token_ids: np.ndarray) -> np.ndarray:
    unique = np.unique(token_ids)
    text = {int(t): tokenizer.decode([int(t)]) for t in unique}
    return np.vectorize(text.__getitem__, otypes=[object])(token_ids)


def proxy_embeddings(out_path: str, proxy: str, model: dict, sentence_model: str,
                     wordnet_dir: str, centering: str = "none",
                     remove_directions: int | str = "auto",
                     categories_path: str | None = None) -> None:
    from .proxies import (
        input_embeddings,
        llm_categories,
        remove_common_directions,
        sentence_embeddings,
        wordnet_supersenses,
    )

    if proxy == "input_embeddings":
        matrix, attrs = input_embeddings(model)
    elif proxy == "llm":
        matrix, attrs = llm_categories(model, categories_path)
    elif proxy == "wordnet":
        matrix, attrs = wordnet_supersenses(model, wordnet_dir)
    else:
        matrix, attrs = sentence_embeddings(model, sentence_model)
    matrix, removed = remove_common_directions(matrix, centering, remove_directions)
    attrs = {**attrs, **{f"proxy_{k}": v for k, v in removed.items()}}
    h5io.write_arrays(out_path, {"embeddings": matrix}, {**attrs, "proxy": proxy,
                                                         "versions": package_versions()})


def analyze_core_shard(core_path: str, embeddings_path: str, outputs: dict[str, str],
                       analysis: dict) -> None:
    from .analysis import analyze_shard
    from .analysis.columns import conform

    core, attrs = h5io.read_arrays(core_path)
    emb, _ = h5io.read_arrays(embeddings_path)
    tables = analyze_shard(
        layer=int(attrs["layer"]), neurons=core["neurons"], token_ids=core["token_ids"],
        tokens=core["tokens"].tolist(), mean_act=core["mean"], max_act=core["max"],
        counts=core["count"], embeddings=emb["embeddings"], params=analysis,
        boundary_ties=core["boundary_ties"], eligible=core["eligible"],
        eligible_tokens=core["eligible_tokens"].tolist(),
        token_extras={"context_left": core["context_left"],
                      "context_right": core["context_right"]},
    )
    tables["tokens"] = conform(tables["tokens"], "tokens")
    meta = {"config_hash": subset_hash(analysis, attrs.get("config_hash")),
            "corpus_hash": attrs.get("corpus_hash", ""), "weights": attrs.get("weights", "")}
    for name, path in outputs.items():
        atomic_parquet(tables[name], path, meta)
        kill_point("analyze-output")


def check_power(core_path: str, embeddings_path: str, output: str, analysis: dict) -> None:
    """The power check of the beyond-geometry level over the model's eligible vocabulary and
    the variant's proxy (`analysis.planted.power_table`)."""
    from .analysis.columns import conform
    from .analysis.planted import Vocabulary, power_table

    core, attrs = h5io.read_arrays(core_path)
    emb = h5io.read_arrays(embeddings_path)[0]["embeddings"]
    eligible = core["eligible"].astype(np.int64)
    vocab = Vocabulary(emb, eligible, np.ones(eligible.size))
    if int(analysis["power_blocks"]):
        table = power_table(vocab, emb, analysis, int(core["token_ids"].shape[1]))
    else:
        table = pd.DataFrame(columns=["criterion", "planted", "smooth", "n_blocks", "block_size"])
    log.info("power check: %s", table.to_dict("records"))
    atomic_parquet(conform(table, "power"), output,
                   {"config_hash": subset_hash(analysis, attrs.get("config_hash"))})


SORT_KEYS = {"neurons": ["layer", "kind", "neuron"], "tokens": ["layer", "neuron", "rank"],
             "segments": ["layer", "kind", "neuron", "scheme", "segment"],
             "clusters": ["layer", "kind", "neuron", "cluster"]}


def merge_tables(inputs: dict[str, list[str]], outputs: dict[str, str], analysis: dict) -> None:
    """All shards into the run's tables: neurons (with q-values), layers, criteria, claims,
    contrasts, and the concatenated tokens / segments / clusters."""
    from .analysis import (
        add_layer_fdr,
        evaluate_claims,
        evaluate_criteria,
        layer_contrasts,
        summarize_layers,
    )

    frames = {name: pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
              for name, paths in inputs.items() if name not in ("core", "power")}
    for name, frame in frames.items():
        frames[name] = frame.sort_values(SORT_KEYS[name], kind="stable").reset_index(drop=True)
    neurons = add_layer_fdr(frames["neurons"], analysis)
    power = pd.read_parquet(inputs["power"][0]) if inputs.get("power") else None
    criteria = evaluate_criteria(neurons, analysis, power if power is not None and len(power)
                                 else None)
    attrs = h5io.read_attrs_only(inputs["core"][0])
    meta = {"config_hash": subset_hash(analysis, attrs.get("config_hash")),
            "corpus_hash": attrs.get("corpus_hash", ""), "weights": attrs.get("weights", ""),
            "model_id": attrs.get("model_id", ""), "versions": package_versions()}
    tables = {"neurons": neurons,
              "layers": summarize_layers(neurons, frames["segments"], analysis),
              "criteria": criteria, "claims": evaluate_claims(criteria, analysis),
              "contrasts": layer_contrasts(criteria, analysis),
              "tokens": frames["tokens"], "segments": frames["segments"],
              "clusters": frames["clusters"]}  # fmt: skip
    for name, frame in tables.items():
        atomic_parquet(frame, outputs[name], meta)


def stage_times(paths: list[str]) -> pd.DataFrame:
    """Wall time per rule from Snakemake's benchmark files (summed over a rule's jobs): a file
    `<rule>.tsv`, or any file in a folder named after its rule (`<rule>/<job>.tsv`)."""
    rows = []
    for path in map(Path, sorted(paths)):
        rule = path.stem if path.parent.name == "benchmarks" else path.parent.name
        frame = pd.read_csv(path, sep="\t")
        rows.append({"rule": rule, "jobs": 1, "wall_s": float(frame["s"].iloc[-1]),
                     "max_rss_mb": float(pd.to_numeric(frame["max_rss"], errors="coerce").iloc[-1])})
    if not rows:
        return pd.DataFrame(columns=["rule", "jobs", "wall_s", "max_rss_mb"])
    out = pd.DataFrame(rows).groupby("rule", sort=False).agg(
        jobs=("jobs", "sum"), wall_s=("wall_s", "sum"), max_rss_mb=("max_rss_mb", "max"))
    return out.reset_index()
