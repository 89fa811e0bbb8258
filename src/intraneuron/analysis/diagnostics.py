"""How the clusterings came out, per layer: is the number of clusters a finding or an artefact?

The silhouette rule picks k within [min_clusters, max_clusters]. When most neurons of a layer
get the lowest k, or the highest, the choice is made by the bound rather than by the data (in
bb25b9d's demo: k = 2 for about 96% of smollm2's neurons, often with a cluster of one or two
tokens, and k = 10 for most of minilm-random's), and every cluster-based criterion inherits
that. `clustering_diagnostics` reads the merged neurons and clusters tables (nothing in the
analysis changes) and flags a layer by `PILE_RULE`; `rule_words` says what k could be.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .columns import TABLES, conform

PILE_SHARE = 0.5  # more than this share of a layer's neurons at one bound: flagged
SLIVER_MAX = 2  # a smallest cluster of at most this many tokens counts as a sliver
PILE_RULE = (
    f"A layer is flagged when more than {PILE_SHARE:.0%} of its neurons get the lowest or the "
    "highest number of clusters the rule allows, or the two bounds together: the bounds, not "
    "the data, then choose k, and criteria that read clusters describe that choice. A fixed "
    "number of clusters or a rule without bounds (hdbscan) is not flagged."
)


def k_bounds(params: dict) -> tuple[float, float]:
    """The smallest and largest k the configured rule may choose (NaN, NaN: no bounds)."""
    fixed = params["n_clusters"] != "auto" or params["min_clusters"] == params["max_clusters"]
    if params["clustering"] == "hdbscan" or fixed:
        return np.nan, np.nan
    return float(params["min_clusters"]), float(params["max_clusters"])


def rule_words(params: dict) -> str:
    """The k rule in words, for the table and the report."""
    if params["clustering"] == "hdbscan":
        return (f"hdbscan chooses k (clusters of at least {params['hdbscan_min_cluster_size']} "
                "tokens; unclustered tokens form one more)")
    if params["n_clusters"] != "auto":
        return f"fixed k = {params['n_clusters']}"
    how = ("best silhouette" if params["cluster_selection"] == "silhouette"
           or params["clustering"] == "spectral"
           else f"distance threshold {params['distance_threshold']}")  # fmt: skip
    sized = params.get("min_cluster_size", 1)
    extra = f", clusters under {sized} tokens dissolved" if sized > 1 else ""
    return (f"{params['clustering']}: {how} over k = {params['min_clusters']}.."
            f"{params['max_clusters']}{extra}")


def clustering_diagnostics(neurons: pd.DataFrame, clusters: pd.DataFrame,
                           params: dict) -> pd.DataFrame:
    """One row per layer of real neurons: the distribution of k, the smallest clusters, the
    shares at the rule's bounds and the warning by `PILE_RULE` (`columns.TABLES`)."""
    real = neurons[neurons["kind"] == "neuron"]
    mine = clusters[clusters["kind"] == "neuron"]
    smallest = mine.groupby(["layer", "neuron"])["size"].min()
    rows = [_layer_row(int(layer), group, smallest.get(layer, pd.Series(dtype=float)), params)
            for layer, group in real.groupby("layer", sort=True)]
    frame = pd.DataFrame(rows, columns=[c.name for c in TABLES["clustering_diagnostics"]])
    return conform(frame, "clustering_diagnostics")


def _layer_row(layer: int, group: pd.DataFrame, smallest: pd.Series, params: dict) -> dict:
    k = group["n_clusters"].to_numpy()
    lo, hi = k_bounds(params)
    shares = pd.Series(k).value_counts(normalize=True).sort_index()
    at = {"lowest": float(np.mean(k == lo)) if np.isfinite(lo) else np.nan,
          "highest": float(np.mean(k == hi)) if np.isfinite(hi) else np.nan}
    piled = [name for name, share in at.items() if share > PILE_SHARE]
    if not piled and at["lowest"] + at["highest"] > PILE_SHARE:
        piled = ["both"]
    sizes = smallest.to_numpy(dtype=np.float64)
    sliver = float(np.mean(sizes <= SLIVER_MAX)) if sizes.size else np.nan
    warning = _warning(layer, piled[0], at, (lo, hi), k.size, sliver) if piled else ""
    return {"layer": layer, "rule": rule_words(params), "n_neurons": int(k.size),
            "k_lowest": lo, "k_highest": hi, "k_median": float(np.median(k)) if k.size else np.nan,
            "k_distribution": " · ".join(f"{int(v)}: {s:.1%}" for v, s in shares.items()),
            "share_at_lowest": at["lowest"], "share_at_highest": at["highest"],
            "smallest_median": float(np.median(sizes)) if sizes.size else np.nan,
            "share_sliver": sliver, "piled_at": piled[0] if piled else "", "warning": warning}


def _warning(layer: int, piled: str, at: dict, bounds: tuple, n: int, sliver: float) -> str:
    """The report's warning for a flagged layer, with the shares that flagged it."""
    lo, hi = bounds
    if piled == "both":
        where = (f"k = {lo:.0f} or {hi:.0f}, the bounds the rule allows, for "
                 f"{at['lowest']:.0%} and {at['highest']:.0%}")
    else:
        bound = lo if piled == "lowest" else hi
        where = f"k = {bound:.0f}, the {piled} the rule allows, for {at[piled]:.0%}"
    text = f"layer {layer}: {where} of {n} neurons; the bounds, not the data, choose k"
    if np.isfinite(sliver) and sliver > 0:
        text += f" ({sliver:.0%} of neurons have a cluster of at most {SLIVER_MAX} tokens)"
    return text
