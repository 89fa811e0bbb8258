"""Analysis of a neuron's core tokens: categorical clusters (top-down) vs activation segments
(bottom-up), after Pichat et al. 2025, "Intra-neuronal attention within language models".

Pure numpy/scipy. Entry points used by the workflow:

- `analyze_shard` -> per-shard tables tokens, neurons, segments, clusters (`shard`)
- `add_layer_fdr` -> Benjamini-Hochberg q-values across each layer's neurons (`layers`)
- `summarize_layers` -> one row per layer (`layers`)
- `evaluate_claims` -> one row per (claim, layer) with a rule-based verdict (`claims`)

Modules: params (defaults, validation), similarity (cosine similarity, homogeneity),
clustering (HAC, cluster count, names), segments (rank segments), permutation (the shared
permutation engine), interleaving (runs, range overlap, AMI), inference (rank tests, Holm, BH,
layer tests), shard (per-neuron analysis, table assembly), layers (FDR, layer summary), claims
(verdicts), synthetic (planted test data), arrays (small helpers).
"""

from .claims import evaluate_claims
from .layers import add_layer_fdr, summarize_layers
from .params import DEFAULT_PARAMS, resolve_params
from .shard import analyze_shard

__all__ = [
    "DEFAULT_PARAMS",
    "add_layer_fdr",
    "analyze_shard",
    "evaluate_claims",
    "resolve_params",
    "summarize_layers",
]
