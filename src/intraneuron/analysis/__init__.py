"""Analysis of a neuron's core tokens: categorical clusters (top-down) vs activation segments
(bottom-up), after Pichat et al. 2025, "Intra-neuronal attention within language models",
with controls that run through the same code and verdicts that can fail.

Entry points used by the workflow:

- `analyze_shard` -> per-shard tables tokens, neurons, segments, clusters (`shard`)
- `add_layer_fdr`, `summarize_layers` -> q-values and one row per (layer, kind) (`layers`)
- `evaluate_criteria`, `evaluate_claims`, `layer_contrasts` -> the verdicts (`claims`)

Modules: params (defaults and validation from the schema), columns (every output column,
defined once), controls (noise and geometry controls, tie breaking), similarity, clustering,
segments, permutation (the shared permutation engine), rowstats (every statistic for every
permutation row), neuron (one token set and its observed orders), shard (a shard of neurons
into tables), inference (rank tests, Holm), interleaving (runs, AMI), layers, criteria (the
claims as data), claims (verdicts), synthetic (planted test data), arrays (small helpers).
"""

from .claims import evaluate_claims, evaluate_criteria, layer_contrasts
from .layers import add_layer_fdr, summarize_layers
from .params import DEFAULT_PARAMS, resolve_params
from .shard import analyze_shard

__all__ = [
    "DEFAULT_PARAMS",
    "add_layer_fdr",
    "analyze_shard",
    "evaluate_claims",
    "evaluate_criteria",
    "layer_contrasts",
    "resolve_params",
    "summarize_layers",
]
