"""Analysis parameters: defaults, one-line meanings, and validation.

The workflow's JSON schema mirrors `DEFAULT_PARAMS` key for key, so the analysis can be called
from Python with a partial dict and from Snakemake with a schema-validated one alike.
"""

from __future__ import annotations

from typing import Any

LINKAGES = ("average", "complete", "single", "ward")
SELECTIONS = ("silhouette", "distance_threshold")

DEFAULT_PARAMS: dict[str, Any] = {
    "linkage": "average",
    "n_clusters": "auto",
    "cluster_selection": "silhouette",
    "min_clusters": 2,
    "max_clusters": 10,
    "distance_threshold": 0.7,
    "n_segments": 4,
    "fine_segments": 10,
    "permutations": 1000,
    "seed": 0,
    "alpha": 0.05,
    "cluster_name_tokens": 3,
    "weak_ami_max": 0.1,
    "interleaving_min": 0.5,
}

PARAM_HELP: dict[str, str] = {
    "linkage": "HAC linkage on cosine distance (ward: on L2-normalised vectors, Euclidean)",
    "n_clusters": "'auto' (use cluster_selection) or a fixed number of clusters >= 2",
    "cluster_selection": "'silhouette' (best k in [min_clusters, max_clusters]) or "
    "'distance_threshold' (cut at that linkage height, clamped to the same range)",
    "min_clusters": "smallest number of clusters considered",
    "max_clusters": "largest number of clusters considered",
    "distance_threshold": "linkage height at which to cut when cluster_selection is "
    "'distance_threshold' (cosine distance; Euclidean on unit vectors for ward)",
    "n_segments": "coarse activation segments (equal-size rank blocks, segment 0 = top)",
    "fine_segments": "fine activation segments (the 'very highest activations' view)",
    "permutations": "random permutations per permutation test",
    "seed": "base seed; each neuron's RNG is derived from (seed, layer, neuron)",
    "alpha": "significance level for tests, FDR and claim verdicts",
    "cluster_name_tokens": "number of most central tokens joined into a cluster's name",
    "weak_ami_max": "claim 1: the segment-cluster relation counts as weak when the layer's "
    "median AMI (coarse segments vs clusters) is below this",
    "interleaving_min": "claim 3: segments count as interleaved across clusters when the "
    "layer's median interleaving index (1 = random order, 0 = contiguous clusters) is at "
    "least this",
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def resolve_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by `params`; out-of-range values raise ValueError.

    Keys the analysis does not use (the workflow's `proxy`, `sentence_model`, ...) are ignored:
    the workflow passes its whole `analysis` config section, already checked by its schema.
    """
    merged = dict(DEFAULT_PARAMS)
    if params:
        merged.update({key: value for key, value in params.items() if key in DEFAULT_PARAMS})
    p = merged
    if p["linkage"] not in LINKAGES:
        raise ValueError(f"linkage must be one of {LINKAGES}, got {p['linkage']!r}")
    if p["cluster_selection"] not in SELECTIONS:
        raise ValueError(f"cluster_selection must be one of {SELECTIONS}")
    if p["n_clusters"] != "auto" and not (_is_int(p["n_clusters"]) and p["n_clusters"] >= 2):
        raise ValueError("n_clusters must be 'auto' or an int >= 2")
    for key, low in (
        ("min_clusters", 2),
        ("max_clusters", 2),
        ("n_segments", 2),
        ("fine_segments", 2),
        ("permutations", 1),
        ("seed", 0),
        ("cluster_name_tokens", 1),
    ):
        if not _is_int(p[key]) or p[key] < low:
            raise ValueError(f"{key} must be an int >= {low}, got {p[key]!r}")
    if p["max_clusters"] < p["min_clusters"]:
        raise ValueError("max_clusters must be >= min_clusters")
    if not 0 < float(p["alpha"]) < 1:
        raise ValueError("alpha must be in (0, 1)")
    if not float(p["distance_threshold"]) > 0:
        raise ValueError("distance_threshold must be > 0")
    if not 0 <= float(p["weak_ami_max"]) <= 1:
        raise ValueError("weak_ami_max must be in [0, 1]")
    if not float(p["interleaving_min"]) >= 0:
        raise ValueError("interleaving_min must be >= 0")
    return p
