"""A shard of neurons, with their controls, into the per-shard tables (columns: `columns.py`).

Every neuron is analysed on its own: its ties are broken, its controls built and its
permutations drawn from generators seeded by (seed, layer, neuron), so any split of neurons
into shards gives identical rows. For each neuron the shard writes one row per kind:

- neuron: its core tokens in the order of their mean activation;
- shuffled, surrogate: the same tokens re-ranked (`controls`); they share the neuron's
  similarity matrix, clusters and permutation batch, so each costs one permutation row;
- random_direction: for every `random_direction_every`-th neuron, a pseudo-neuron with its own
  token set, the top eligible types along a random direction of the proxy space, as many as
  the neuron it pairs is analysed on.

A selectivity rule (`analysis.selectivity`) keeps a prefix of each neuron's ranking: the core
tokens whose mean activation is positive, or at least a fraction of the neuron's top one. The
neuron and its shuffled and surrogate controls are analysed on that prefix. A neuron with
fewer than `analysis.min_tokens` such tokens is excluded and analysed on its top min_tokens,
so its rows still exist.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import nullcontext
from functools import cache

import numpy as np
import pandas as pd

from .columns import TABLES, conform
from .controls import (
    descending_order,
    direction_seed,
    loo_ridge,
    random_direction_neurons,
    tied_share,
)
from .neuron import SCHEMES, Context, Order, Result, TokenSet, analyze_token_set, silhouette_null
from .params import resolve_params

TOKEN_EXTRAS = ("context_left", "context_right")  # added by the pipeline from core tokens

try:  # optional: keeps BLAS single-threaded inside the neuron loop (see analyze_shard)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - then set OPENBLAS_NUM_THREADS=1 in the environment
    threadpool_limits = None


def analyze_shard(
    layer: int,
    neurons: np.ndarray,
    token_ids: np.ndarray,
    tokens: list[list[str]],
    mean_act: np.ndarray,
    max_act: np.ndarray,
    counts: np.ndarray,
    embeddings: np.ndarray,
    params: dict | None = None,
    *,
    boundary_ties: np.ndarray | None = None,
    eligible: np.ndarray | None = None,
    eligible_tokens: list[str] | None = None,
    token_extras: dict[str, np.ndarray] | None = None,
) -> dict[str, pd.DataFrame]:
    """Tables tokens, neurons, segments, clusters of one layer's shard.

    Rows of the (n, k) inputs are neurons, columns their core tokens by descending mean
    activation. `boundary_ties[i]`: eligible types outside neuron i's core set whose mean
    equals its k-th mean. `eligible` / `eligible_tokens`: the token types a random-direction
    pseudo-neuron draws from and their text (default: every embedding row, named by id).
    `token_extras`: more (n, k) per-token columns for the tokens table, reordered with it.

    BLAS is limited to one thread for the duration (when threadpoolctl is installed): the
    per-neuron products are small, and spin-waiting BLAS threads made the loop 3x slower when
    other jobs occupied the cores. Parallelism comes from running shards side by side.
    """
    params = resolve_params(params)
    inputs = _checked_inputs(neurons, token_ids, tokens, mean_act, max_act, counts, embeddings,
                             params, boundary_ties)  # fmt: skip
    if eligible is None:
        eligible = np.arange(embeddings.shape[0])
        eligible_tokens = [f"#{i}" for i in eligible]
    limit = threadpool_limits(limits=1, user_api="blas") if threadpool_limits else nullcontext()
    with limit:
        shard = _ShardTables(layer, inputs["token_ids"].shape[1])
        context = Context({}, _null_by_size(embeddings, np.asarray(eligible), params, layer))
        used = {}
        for row in range(inputs["neurons"].size):
            used[int(inputs["neurons"][row])] = _analyze_neuron(
                shard, row, inputs, embeddings, params, context, token_extras or {})
        _analyze_random_directions(shard, used, embeddings, params, context,
                                   np.asarray(eligible), list(eligible_tokens or []))
    return shard.frames(list(token_extras or {}))


def _null_by_size(embeddings: np.ndarray, eligible: np.ndarray, params: dict, layer: int):
    """Silhouettes of random n-sets of the eligible vocabulary, computed once per size n."""
    @cache
    def null(n: int) -> np.ndarray:
        if eligible.size < n:
            return np.empty(0)
        return silhouette_null(embeddings, eligible, n, params, layer)

    return null


def selected_count(act: np.ndarray, params: dict) -> int:
    """Core tokens (a prefix of the descending `act`) that pass `analysis.selectivity`."""
    rule = params["selectivity"]
    if rule == "none":
        return int(act.size)
    keep = act > 0
    if rule == "fraction":
        keep &= act >= float(params["selectivity_fraction"]) * act[0]
    return int(np.sum(keep))


class Selection:
    """How many of a neuron's ranked core tokens are analysed, and why it is excluded if so."""

    def __init__(self, act: np.ndarray, params: dict):
        k = act.size
        self.selected = selected_count(act, params)
        floor = min(int(params["min_tokens"]), k)
        self.reason = ""
        if params["selectivity"] != "none" and self.selected < floor:
            self.reason = (f"too few selective core tokens: {self.selected} of {k} pass "
                           f"analysis.selectivity = {_rule_text(params)} "
                           f"(analysis.min_tokens = {params['min_tokens']})")
        self.n = floor if self.reason else self.selected


def _rule_text(params: dict) -> str:
    if params["selectivity"] == "positive":
        return "positive (mean activation > 0)"
    return (f"fraction (mean activation > 0 and >= {params['selectivity_fraction']} x the "
            "neuron's top)")


def _analyze_neuron(shard: _ShardTables, row: int, inputs: dict, embeddings: np.ndarray,
                    params: dict, context: Context, token_extras: dict) -> Selection:
    """The neuron's rows and its shuffled and surrogate controls' rows, all on the core tokens
    its selection keeps; returns that selection."""
    seed, layer = int(params["seed"]), shard.layer
    nid = int(inputs["neurons"][row])
    tie_rng = np.random.default_rng([seed, layer, nid, 2])
    rank = descending_order(inputs["mean_act"][row], tie_rng)
    selection = Selection(inputs["mean_act"][row][rank].astype(np.float64), params)
    rank = rank[:selection.n]
    ids = inputs["token_ids"][row][rank].astype(np.int64)
    words = [str(inputs["tokens"][row][i]) for i in rank]
    act = inputs["mean_act"][row][rank].astype(np.float64)
    share = tied_share(act, _boundary_ties(inputs, row, act))
    coverage = float(np.mean(np.any(embeddings[ids] != 0, axis=1)))
    reason = selection.reason or _exclusion(share, coverage, params)
    orders = [Order("neuron", np.arange(ids.size), act)]
    if "shuffled" in params["controls"]:
        orders.append(Order("shuffled", tie_rng.permutation(ids.size), act))
    r2 = float("nan")
    if "surrogate" in params["controls"]:
        predicted, r2 = loo_ridge(embeddings[ids], act)
        order = descending_order(predicted, tie_rng)
        orders.append(Order("surrogate", order, predicted[order]))
    results = analyze_token_set(TokenSet(ids, words), orders, embeddings, params, context,
                                np.random.default_rng([seed, layer, nid]), with_clusters=True)
    common = {"excluded": bool(reason), "exclusion_reason": reason, "tied_share": share,
              "proxy_coverage": coverage, "surrogate_r2": r2,
              "n_selected": selection.selected}  # fmt: skip
    for result in results:
        shard.add(nid, result, common)
    extras = {name: np.asarray(values[row])[rank] for name, values in token_extras.items()}
    shard.add_tokens(nid, ids, words, act, inputs["max_act"][row][rank],
                     inputs["counts"][row][rank], results[0].token_columns, extras)
    return selection


def _boundary_ties(inputs: dict, row: int, act: np.ndarray) -> int:
    """Candidates outside the analysed prefix that tie with its last value: eligible types
    outside the core set when the prefix is the whole set, else the core tokens cut off."""
    full = np.asarray(inputs["mean_act"][row], dtype=np.float64)
    if act.size == full.size:
        return int(inputs["boundary_ties"][row])
    return int(np.sum(full == act[-1])) - int(np.sum(act == act[-1]))


def _exclusion(tied: float, coverage: float, params: dict) -> str:
    """Why a neuron is left out of the claims ('' when it is not)."""
    if tied > float(params["max_tied_share"]):
        return (f"ranking decided by ties: {tied:.0%} of core tokens tie in mean activation "
                f"(analysis.max_tied_share = {params['max_tied_share']})")
    if coverage < float(params["min_proxy_coverage"]):
        return (f"proxy coverage too low: {coverage:.0%} of core tokens have a proxy vector "
                f"(analysis.min_proxy_coverage = {params['min_proxy_coverage']})")
    return ""


def _analyze_random_directions(shard: _ShardTables, used: dict[int, Selection],
                               embeddings: np.ndarray, params: dict, context: Context,
                               eligible: np.ndarray, names: list[str]) -> None:
    """One pseudo-neuron per `random_direction_every`-th neuron of the shard, with as many
    tokens as that neuron is analysed on (its top ones along the direction), excluded when the
    neuron is excluded for its selection."""
    if "random_direction" not in params["controls"] or not used:
        return
    every = int(params["random_direction_every"])
    paired = [n for n in used if n % every == 0]
    seed, layer = int(params["seed"]), shard.layer
    k = shard.k
    if eligible.size < k:
        raise ValueError(f"random-direction controls need at least k = {k} eligible token "
                         f"types, the vocabulary offers {eligible.size}")
    ids, scores = random_direction_neurons(embeddings, eligible, k,
                                           [direction_seed(seed, layer, n) for n in paired])
    position = {int(t): i for i, t in enumerate(eligible)}
    for nid, row_ids, row_scores in zip(paired, ids, scores, strict=True):
        n = used[nid].n
        row_ids, row_scores = row_ids[:n], row_scores[:n]
        words = [names[position[int(t)]] for t in row_ids]
        orders = [Order("random_direction", np.arange(n), row_scores)]
        (result,) = analyze_token_set(TokenSet(row_ids, words), orders, embeddings, params,
                                      context, np.random.default_rng([seed, layer, nid, 3]),
                                      with_clusters=True)
        coverage = float(np.mean(np.any(embeddings[row_ids] != 0, axis=1)))
        reason = used[nid].reason
        shard.add(nid, result, {"excluded": bool(reason), "exclusion_reason": reason,
                                "tied_share": 0.0, "proxy_coverage": coverage,
                                "surrogate_r2": float("nan"), "n_selected": n})


class _ShardTables:
    """Columns accumulated per table (lists of arrays, no per-row frames), turned into
    declared frames at the end."""

    def __init__(self, layer: int, k: int):
        self.layer = int(layer)
        self.k = int(k)  # core tokens per neuron given; each neuron may analyse fewer
        self.neurons: list[dict] = []
        self.columns: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))

    def _append(self, table: str, keys: dict, rows: dict) -> None:
        n = len(next(iter(rows.values())))
        columns = self.columns[table]
        for name, value in keys.items():
            columns[name].append(np.full(n, value, dtype=object if isinstance(value, str)
                                         else None))  # fmt: skip
        for name, values in rows.items():
            columns[name].append(np.asarray(values, dtype=object if name in ("name", "token")
                                            else None))  # fmt: skip

    def add(self, neuron: int, result: Result, common: dict) -> None:
        keys = {"neuron": neuron, "kind": result.kind}
        self.neurons.append({**keys, **common, **result.scalars})
        for scheme in SCHEMES:
            self._append("segments", {**keys, "scheme": scheme}, result.segments[scheme])
        if result.clusters is not None:
            self._append("clusters", keys, result.clusters)

    def add_tokens(self, neuron: int, ids, words, act, max_act, counts, columns: dict,
                   extras: dict) -> None:
        self._append("tokens", {"neuron": neuron}, {
            "rank": np.arange(ids.size), "token_id": ids, "token": words,
            "mean_activation": act, "max_activation": max_act, "count": counts, **columns,
            **extras,
        })  # fmt: skip

    def frames(self, token_extras: list[str]) -> dict[str, pd.DataFrame]:
        """Declared frames; an empty shard still has every declared column (the tokens table
        has its extra columns only when they were given)."""
        tables = {"neurons": pd.DataFrame(self.neurons)}
        for name in ("segments", "clusters", "tokens"):
            tables[name] = pd.DataFrame({col: np.concatenate(parts)
                                         for col, parts in self.columns[name].items()})
        for name, frame in tables.items():
            if frame.empty:
                names = [c.name for c in TABLES[name] if c.name != "layer"]
                if name == "tokens":
                    names = [n for n in names if n not in TOKEN_EXTRAS or n in token_extras]
                frame = tables[name] = pd.DataFrame({n: [] for n in names})
            frame.insert(0, "layer", self.layer)
        for name in ("neurons", "segments", "clusters"):
            tables[name] = conform(tables[name], name)
        return tables


def _checked_inputs(neurons, token_ids, tokens, mean_act, max_act, counts, embeddings, params,
                    boundary_ties) -> dict:
    """The inputs as arrays; contract violations raise instead of misaligning tables."""
    neurons = np.asarray(neurons)
    token_ids = np.asarray(token_ids)
    mean_act = np.asarray(mean_act, dtype=np.float64)
    max_act = np.asarray(max_act)
    counts = np.asarray(counts)
    n = neurons.size
    if token_ids.ndim != 2 or token_ids.shape[0] != n or len(tokens) != n:
        raise ValueError("token_ids and tokens must have one row per neuron")
    if not (token_ids.shape == mean_act.shape == max_act.shape == counts.shape):
        raise ValueError("token_ids, mean_act, max_act and counts must all be (n_neurons, k)")
    if any(len(row) != token_ids.shape[1] for row in tokens):
        raise ValueError("every row of tokens must hold k decoded strings")
    k = token_ids.shape[1]
    need = max(3, params["n_segments"], params["fine_segments"], params["max_clusters"] + 1)
    if n and k < need:
        raise ValueError(f"k = {k} core tokens; the analysis needs at least {need} "
                         "(segments, and more tokens than max_clusters)")
    if n and params["selectivity"] != "none" and min(params["min_tokens"], k) < need:
        raise ValueError(f"min_tokens = {params['min_tokens']}; a neuron is analysed on at least "
                         f"that many core tokens, and the analysis needs {need}")
    if n and (token_ids.min() < 0 or token_ids.max() >= embeddings.shape[0]):
        raise ValueError("token ids outside the embedding matrix")
    if not np.all(np.isfinite(mean_act)):
        raise ValueError("mean activations must be finite")
    if np.any(np.diff(mean_act, axis=1) > 0):
        raise ValueError("mean activations must be sorted in descending order along each row")
    ties = np.zeros(n, dtype=np.int64) if boundary_ties is None else np.asarray(boundary_ties)
    return {"neurons": neurons, "token_ids": token_ids, "tokens": tokens, "mean_act": mean_act,
            "max_act": max_act, "counts": counts, "boundary_ties": ties}  # fmt: skip
