"""The one definition of every analysis output table: column, dtype and meaning.

Writers pass their frames through `conform`, which fails loudly on a missing or unknown column
and casts to the declared dtype; `docs/tables.md` is generated from these lists (`markdown`,
and a test keeps it current), so code, files and documentation cannot drift apart.

Conventions: rank 0 is the core token with the highest mean activation; segment 0 is the top
activation segment; cluster 0 is the cluster with the highest mean activation. Permutation
p-values are one-sided, (1 + #{null at least as extreme}) / (1 + P), from one batch of P rank
permutations per token set (`rowstats`), so they are exact for shuffled controls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .criteria import CRITERIA


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # numpy dtype name, or "str" / "bool" / "list"
    meaning: str


SCHEMES = ("coarse", "fine")
KIND = Column("kind", "str", "neuron, or a control: shuffled, surrogate, random_direction")
KEYS = [
    Column("layer", "int16", "layer index"),
    Column("neuron", "int32", "neuron index in the layer (for a control: the neuron it pairs)"),
]


def _scheme_columns(s: str) -> list[Column]:
    seg = "quartile-like coarse" if s == "coarse" else "decile-like fine"
    return [
        Column(f"ami_{s}", "float64", f"adjusted mutual information of {seg} segment and "
               "cluster labels"),
        Column(f"ami_{s}_null_mean", "float64", "its permutation null mean"),
        Column(f"ami_{s}_null_sd", "float64", "its permutation null sd (ddof 1)"),
        Column(f"ami_{s}_z", "float64", "(AMI - null mean) / null sd; descriptive (skewed null)"),
        Column(f"ami_{s}_p", "float64", "permutation p: AMI above chance"),
        Column(f"top_{s}_homogeneity", "float64", "mean pairwise cosine within the top "
               f"{s} segment"),
        Column(f"top_{s}_z", "float64", "its z against random same-size segments"),
        Column(f"top_{s}_p", "float64", "permutation p: top segment more homogeneous than a "
               "random segment"),
        Column(f"top_{s}_homogeneity_dc", "float64", "top segment homogeneity on the "
               "double-centred similarity (each token's typicality of the core set removed)"),
        Column(f"{s}_top_position", "float64", "share of the other segments less homogeneous "
               "than the top one (1 = top is the most homogeneous)"),
        Column(f"{s}_trend", "float64", "least-squares slope of segment homogeneity on segment "
               "height (> 0: homogeneity rises with activation)"),
        Column(f"{s}_trend_p", "float64", "permutation p of the slope"),
        Column(f"{s}_top_margin", "float64", "top segment homogeneity minus the highest of the "
               "other segments"),
        Column(f"{s}_top_margin_p", "float64", "permutation p of the margin"),
        Column(f"{s}_top_margin_dc", "float64", "the margin on the double-centred similarity"),
        Column(f"{s}_top_margin_dc_p", "float64", "permutation p of the double-centred margin"),
        Column(f"{s}_top_excess", "float64", "top segment homogeneity above the line fitted "
               "to the other segments, extrapolated to the top"),
        Column(f"{s}_top_excess_p", "float64", "permutation p of the excess"),
    ]


NEURON_METRICS = [
    Column("excluded", "bool", "left out of every claim (see exclusion_reason)"),
    Column("exclusion_reason", "str", "why it is excluded ('' when it is not)"),
    Column("tied_share", "float64", "share of core tokens whose mean activation ties with "
           "another candidate's (ties are broken by a seeded random order)"),
    Column("proxy_coverage", "float64", "share of core tokens with a proxy vector (1 for "
           "embedding proxies; the WordNet proxy has none for non-words)"),
    Column("surrogate_r2", "float64", "leave-one-out R^2 of the linear read-out of the proxy "
           "embeddings fitted to the neuron's core-token activations (same for its controls)"),
    Column("n_tokens", "int32", "core tokens analysed: those passing analysis.selectivity, or "
           "the top analysis.min_tokens when fewer pass (then excluded)"),
    Column("n_selected", "int32", "core tokens passing analysis.selectivity (all k under "
           "'none'; for a random_direction row, the tokens it is analysed on)"),
    Column("n_clusters", "int32", "clusters chosen"),
    Column("silhouette", "float64", "cosine silhouette of the chosen clustering"),
    Column("cluster_structure_p", "float64", "share (with the usual +1) of random k-sets of the "
           "eligible vocabulary whose clustering has at least this silhouette: small = the core "
           "tokens have cluster structure"),
    Column("mean_similarity", "float64", "mean pairwise cosine of all core tokens"),
    Column("kw_h", "float64", "Kruskal-Wallis H of activation rank across clusters"),
    Column("kw_df", "int32", "its degrees of freedom"),
    Column("kw_p", "float64", "its chi-square p"),
    Column("kw_perm_p", "float64", "its permutation p (exact)"),
    Column("kw_epsilon2", "float64", "effect size epsilon^2 = H / (n - 1)"),
    Column("kw_eta2", "float64", "effect size eta^2_H = (H - g + 1) / (n - g)"),
    Column("n_pairs", "int32", "cluster pairs"),
    Column("n_sig_pairs", "int32", "Dunn pairs with Holm p < alpha"),
    Column("n_differ_from_rest", "int32", "clusters whose Holm-corrected Mann-Whitney against "
           "the rest is < alpha"),
    Column("runs", "float64", "runs of equal cluster labels along the ranking"),
    Column("runs_null_mean", "float64", "its permutation null mean"),
    Column("runs_null_sd", "float64", "its permutation null sd"),
    Column("runs_z", "float64", "its z (descriptive)"),
    Column("runs_p", "float64", "permutation p: fewer runs than chance"),
    Column("interleaving", "float64", "(runs - c) / (null runs - c): 0 contiguous clusters, "
           "1 as mixed as chance"),
    Column("range_overlap_frac", "float64", "share of cluster pairs whose rank ranges meet"),
    Column("range_jaccard", "float64", "mean Jaccard overlap of cluster rank ranges"),
    *[c for s in SCHEMES for c in _scheme_columns(s)],
    Column("distinct_rho", "float64", "Spearman over clusters between mean rank (higher = "
           "lower activation) and distinctness (mean |Cliff's delta| against the other "
           "clusters, as z against its permutation null); NaN below 3 clusters"),
    Column("distinct_rho_p", "float64", "permutation p: lower-activation clusters more "
           "distinct"),
    *[c for crit in CRITERIA for c in (
        Column(f"{crit.column}_geo_p", "float64", f"criterion {crit.id}'s statistic against "
               "the geometry null (Moran spectral randomizations of the order; NaN for "
               "shuffled and surrogate rows)"),
        Column(f"{crit.column}_null_rate", "float64", f"realised pass rate at alpha of "
               f"criterion {crit.id}'s permutation rows (its false-positive rate on this "
               "token set)"),
        Column(f"{crit.column}_geo_null_rate", "float64", "the same for its geometry rows"),
    )],
]
# q-values (Benjamini-Hochberg across a layer's rows of one kind) are added at merge time.
FDR_COLUMNS = ["kw_perm_p", "runs_p", "ami_coarse_p", "ami_fine_p", "top_coarse_p",
               "top_fine_p", "coarse_trend_p", "fine_trend_p"]  # fmt: skip

TABLES: dict[str, list[Column]] = {
    "neurons": [*KEYS, KIND, *NEURON_METRICS],
    "segments": [
        *KEYS, KIND,
        Column("scheme", "str", "coarse or fine"),
        Column("segment", "int16", "0 = top activation segment"),
        Column("size", "int32", "tokens in the segment"),
        Column("rank_min", "int16", "first rank"),
        Column("rank_max", "int16", "last rank"),
        Column("act_min", "float64", "lowest activation"),
        Column("act_max", "float64", "highest activation"),
        Column("act_mean", "float64", "mean activation"),
        Column("homogeneity", "float64", "mean pairwise cosine (off-diagonal)"),
        Column("homogeneity_dc", "float64", "the same on the double-centred similarity"),
        Column("null_mean", "float64", "homogeneity of random same-size segments: mean"),
        Column("null_sd", "float64", "and sd (ddof 1)"),
        Column("z", "float64", "(homogeneity - null_mean) / null_sd"),
        Column("p", "float64", "permutation p: more homogeneous than chance"),
        Column("n_clusters_present", "int16", "clusters with a token in the segment"),
        Column("dominant_cluster", "int16", "the most frequent cluster"),
        Column("purity", "float64", "its share of the segment"),
    ],  # fmt: skip
    "clusters": [
        *KEYS, KIND,
        Column("cluster", "int16", "0 = highest mean activation"),
        Column("size", "int32", "tokens"),
        Column("mean_activation", "float64", "mean activation of its tokens"),
        Column("act_min", "float64", "lowest activation"),
        Column("act_max", "float64", "highest activation"),
        Column("rank_min", "int16", "best rank"),
        Column("rank_max", "int16", "worst rank"),
        Column("homogeneity", "float64", "mean pairwise cosine of its tokens"),
        Column("name", "str", "its most central tokens joined by ' · '"),
        Column("n_runs", "int16", "contiguous rank blocks it occupies"),
        Column("vs_rest_effect", "float64", "rank-biserial of its activations against the "
               "rest (> 0 higher)"),
        Column("vs_rest_p", "float64", "Mann-Whitney p against the rest"),
        Column("vs_rest_p_holm", "float64", "the same, Holm-corrected over clusters"),
        Column("differs_from_rest", "bool", "vs_rest_p_holm < alpha"),
        Column("n_sig_pairs", "int16", "Dunn pairs involving it with Holm p < alpha"),
        Column("distinctness", "float64", "mean |Cliff's delta| against each other cluster"),
        Column("activation_position", "float64", "1 = highest mean activation of the "
               "neuron's clusters, 0 = lowest"),
    ],  # fmt: skip
    "tokens": [
        *KEYS,
        Column("rank", "int16", "0 = highest mean activation (ties in a seeded random order)"),
        Column("token_id", "int32", "token id"),
        Column("token", "str", "decoded token"),
        Column("mean_activation", "float64", "mean activation over the corpus"),
        Column("max_activation", "float32", "maximum activation"),
        Column("count", "int64", "occurrences in the corpus"),
        Column("cluster", "int16", "its cluster"),
        Column("segment", "int16", "its coarse segment"),
        Column("fine_segment", "int16", "its fine segment"),
        Column("centrality", "float32", "mean cosine to the other members of its cluster"),
        Column("context_left", "str", "text before its maximally activating occurrence"),
        Column("context_right", "str", "text after it"),
    ],  # fmt: skip
    "labels": [
        *KEYS,
        Column("unit", "str", "cluster (top-down) or segment (coarse activation segment)"),
        Column("index", "int16", "its cluster or segment number"),
        Column("size", "int32", "its core tokens"),
        Column("tokens", "str", "the tokens shown to the labeller (a cluster's most central, a "
               "segment's highest-ranked), comma-separated"),
        Column("label", "str", "the instruct model's category name for them"),
    ],
    "label_neurons": [
        *KEYS,
        Column("n_clusters", "int32", "its clusters"),
        Column("n_distinct_labels", "int32", "distinct categories their labels name (case, "
               "punctuation and a plural 's' ignored)"),
        Column("labels_distinct", "bool", "every cluster has a category of its own"),
        Column("defined", "bool", "at least 2 clusters (with one, distinctness is not judged)"),
    ],
    "categories": [
        Column("token_id", "int64", "token id in the analysed model's vocabulary"),
        Column("token", "str", "its text"),
        Column("category", "str", "the instruct model's category for it from the closed list "
               "(analysis.proxy: llm)"),
        Column("supersense", "str", "its WordNet supersense, empty where WordNet has no entry "
               "(the labeller's validity check)"),
    ],
    "label_layers": [
        Column("layer", "int16", "layer index"),
        Column("n_labelled", "int32", "neurons labelled"),
        Column("n_judged", "int32", "of them with at least 2 clusters"),
        Column("n_distinct", "int32", "of those, neurons whose cluster labels are distinct"),
        Column("distinct_share", "float64", "n_distinct / n_judged"),
    ],
    "criteria": [
        Column("claim", "int16", "claim number"),
        Column("criterion", "str", "criterion or effect id, e.g. 2B"),
        Column("name", "str", "short name"),
        Column("layer", "int16", "layer"),
        Column("role", "str", "test (a per-neuron criterion that votes in the claim's verdict) "
               "or effect (a layer-level effect statement that does not)"),
        Column("rule", "str", "the per-neuron pass rule, or the effect statement, in words"),
        Column("n_neuron", "int32", "real neurons judged (excluded and undefined left out)"),
        Column("defined_share", "float64", "share of the layer's analysed neurons with the "
               "statistic defined"),
        Column("pass_neuron", "float64", "share of them that pass"),
        Column("pass_neuron_lo", "float64", "bootstrap 95% interval over neurons: low"),
        Column("pass_neuron_hi", "float64", "and high"),
        *[c for kind in ("shuffled", "surrogate", "random_direction") for c in (
            Column(f"n_{kind}", "int32", f"{kind} controls judged"),
            Column(f"pass_{kind}", "float64", f"share of {kind} controls that pass"),
        )],
        Column("null_rate", "float64", "realised null pass rate: mean over the judged neurons "
               "of their permutation rows' own pass rate (alpha for a continuous statistic)"),
        Column("calibration_p", "float64", "two-sided binomial p that shuffled controls pass "
               "at the realised null rate of their own token sets"),
        Column("miscalibrated", "bool", "calibration_p < 0.001: the criterion does not count"),
        Column("exists_p", "float64", "one-sided binomial p that neurons pass more often than "
               "the realised null rate"),
        Column("exists", "bool", "exists_p < alpha, calibrated"),
        Column("n_geometry", "int32", "real neurons with a geometry p"),
        Column("pass_geometry", "float64", "share of them passing against the geometry null"),
        Column("geometry_null_rate", "float64", "realised pass rate of the geometry rows"),
        Column("geometry_p", "float64", "one-sided binomial p that neurons pass the geometry "
               "test more often than its realised null rate"),
        Column("smooth_pass", "float64", "share of random-direction pseudo-neurons (linear "
               "read-outs of the proxy space) passing the geometry test: its false-positive "
               "rate on smooth maps, measured in this run"),
        Column("smooth_p", "float64", "one-sided Fisher p that neurons pass the geometry test "
               "more often than those linear read-outs"),
        Column("power", "float64", "the power check: share of blocks with a proxy "
               "neighbourhood planted on top where the criterion holds beyond geometry (NaN "
               "when analysis.power_blocks = 0)"),
        Column("identifiable", "bool", "a layer whose neurons all passed the geometry test "
               "would beat the linear read-outs (Fisher p < alpha), and the power check finds "
               "a planted category (power >= analysis.min_power): the test can tell a "
               "categorical layer from a smooth one with this proxy"),
        Column("beyond_geometry", "bool", "exists, identifiable, geometry_p < alpha and "
               "smooth_p < alpha"),
        Column("effect", "float64", "effect rows: the median of the effect's statistic"),
        Column("effect_lo", "float64", "its bootstrap 95% interval: low"),
        Column("effect_hi", "float64", "and high"),
        Column("effect_holds", "bool", "effect rows: the interval lies on the stated side"),
        Column("testable", "bool", "defined for at least analysis.min_defined_share of the "
               "layer's analysed neurons, and calibrated"),
        Column("reason", "str", "why not testable ('' when testable)"),
    ],
    "power": [
        Column("criterion", "str", "criterion id"),
        Column("planted", "float64", "share of the power check's blocks with a proxy "
               "neighbourhood planted on top (strength 1) where it holds beyond geometry"),
        Column("smooth", "float64", "the same for blocks of linear read-outs (a "
               "false-positive rate; near 0)"),
        Column("n_blocks", "int32", "blocks of each kind"),
        Column("block_size", "int32", "pseudo-neurons per block"),
    ],
    "claims": [
        Column("claim", "int16", "claim number"),
        Column("claim_text", "str", "the paper's claim"),
        Column("layer", "int16", "layer"),
        Column("criteria", "list", "ids of the criteria that vote in its verdict"),
        Column("n_criteria", "int16", "how many"),
        Column("n_exist", "int16", "criteria that hold at level exists"),
        Column("n_beyond", "int16", "criteria that hold beyond geometry"),
        Column("exists_holm", "float64", "smallest Holm-adjusted exists p of its counting "
               "criteria"),
        Column("beyond_holm", "float64", "the same for the geometry p of its identifiable "
               "criteria"),
        Column("verdict_exists", "str", "supported, mixed, not supported or not testable"),
        Column("verdict_beyond_geometry", "str", "the same, or not identifiable with this "
               "proxy, for the beyond-geometry level"),
        Column("effects", "str", "its effect statements with their medians and intervals"),
        Column("rule", "str", "how the verdicts combine the criteria, in words"),
    ],
    "contrasts": [
        Column("criterion", "str", "criterion id"),
        Column("name", "str", "its short name"),
        Column("layer_a", "int16", "the first layer"),
        Column("layer_b", "int16", "the layer compared with it"),
        Column("difference", "float64", "pass rate of real neurons in layer_b minus layer_a"),
        Column("lo", "float64", "bootstrap 95% interval: low"),
        Column("hi", "float64", "and high"),
    ],
    "robustness": [
        Column("model", "str", "model name (config models)"),
        Column("layer", "int16", "layer"),
        Column("claim", "int16", "claim number"),
        Column("claim_text", "str", "the paper's claim"),
        Column("variant", "str", "analysis variant (config variants; base = the paper's "
               "setting)"),
        Column("paper", "bool", "the variant is the paper's setting (base)"),
        Column("settings", "str", "the variant's overrides as section.key=value, or 'no "
               "overrides'"),
        Column("verdict_exists", "str", "the claim's verdict at level exists in this variant"),
        Column("verdict_beyond_geometry", "str", "and at level beyond geometry"),
        Column("same_as_base", "bool", "the variant repeats base's computation for this claim "
               "and layer (robustness.SAME_RULE); not counted in the summary"),
    ],
    "robustness_summary": [
        Column("model", "str", "model name"),
        Column("layer", "int16", "layer"),
        Column("claim", "int16", "claim number"),
        Column("claim_text", "str", "the paper's claim"),
        Column("level", "str", "exists or beyond geometry"),
        Column("n_variants", "int16", "variants run"),
        Column("n_same_as_base", "int16", "variants left out: they repeat base's computation "
               "for this claim and layer"),
        Column("n_testable", "int16", "counted variants whose verdict is not 'not testable'"),
        Column("n_supported", "int16", "variants whose verdict is 'supported'"),
        Column("holds_in", "str", "all, most, few, none or not testable (rule in the rule "
               "column)"),
        Column("paper_verdict", "str", "the verdict in the paper's setting ('' if base was not "
               "run)"),
        Column("rule", "str", "how holds_in follows from the counts, in words"),
    ],
    "clustering_diagnostics": [
        Column("layer", "int16", "layer"),
        Column("rule", "str", "how the number of clusters k was chosen, in words"),
        Column("n_neurons", "int32", "real neurons"),
        Column("k_lowest", "float64", "smallest k the rule may choose (NaN: the rule has no "
               "bounds, e.g. hdbscan)"),
        Column("k_highest", "float64", "largest k the rule may choose (NaN: no bounds)"),
        Column("k_median", "float64", "median k over neurons"),
        Column("k_distribution", "str", "share of neurons per k, as 'k: share' pairs"),
        Column("share_at_lowest", "float64", "share of neurons with k = k_lowest"),
        Column("share_at_highest", "float64", "share of neurons with k = k_highest"),
        Column("smallest_median", "float64", "median over neurons of the size of the "
               "neuron's smallest cluster (tokens)"),
        Column("share_sliver", "float64", "share of neurons whose smallest cluster has at "
               "most diagnostics.SLIVER_MAX tokens"),
        Column("piled_at", "str", "'lowest' or 'highest' when more than "
               "diagnostics.PILE_SHARE of neurons sit at that bound, 'both' when only the two "
               "bounds together hold more, else ''"),
        Column("warning", "str", "the warning shown in the report ('' when none)"),
    ],
    "ablation": [
        *KEYS,
        Column("method", "str", "zero or mean: what the neuron's activation is set to"),
        Column("n_top_tokens", "int32", "core tokens of its top coarse segment (condition top)"),
        Column("n_lower_tokens", "int32", "core tokens of its other segments (condition lower)"),
        Column("n_windows", "int32", "corpus windows used: the first (up to max_windows) where "
               "all three conditions can remove activation"),
        *[c for name, where in (("top", "top-segment core tokens"),
                                ("lower", "lower-segment core tokens"),
                                ("random", "random positions holding neither")) for c in (
            Column(f"{name}_count", "int64", f"positions ablated at {where} (the last one per "
                   "window only partly, so the masses match)"),
            Column(f"{name}_mass", "float64", "activation mass removed (sum of |change|); equal "
                   "across the three conditions by construction"),
            Column(f"{name}_effect", "float64", "summed |change| of all next-layer neurons' "
                   "activations per unit of mass removed"),
        )],
        Column("ratio", "float64", "log(top_effect / lower_effect): > 0 when top-segment "
               "activations matter more to the next layer per unit removed"),
        Column("ratio_lo", "float64", "bootstrap 95% interval over windows: low"),
        Column("ratio_hi", "float64", "and high"),
        Column("top_vs_random", "float64", "log(top_effect / random_effect)"),
        Column("top_next", "list", "the top_next next-layer neurons whose activation changes "
               "most per unit removed under condition top, most affected first"),
        Column("top_next_effect", "list", "their summed |change| per unit removed"),
        Column("n_next_with_tokens", "int32", "of them, neurons with core tokens in the tokens "
               "table (0 when the next layer was not analysed)"),
        Column("closeness", "float64", "mean proxy cosine of those neurons' core tokens to this "
               "neuron's top segment minus to its lower segments"),
        Column("closeness_baseline", "float64", "the same for the core tokens of all analysed "
               "next-layer neurons"),
        Column("closeness_excess", "float64", "closeness minus its baseline: > 0 when the most "
               "affected next-layer neurons are categorically closer to the top segment"),
    ],
    "ablation_layers": [
        Column("layer", "int16", "the ablated layer (its next layer is measured)"),
        Column("kind", "str", "neuron, or swapped: the control where each neuron's top and lower "
               "conditions are exchanged at random, ablation.swaps times"),
        Column("n_sampled", "int32", "neurons ablated"),
        Column("n_neurons", "int32", "of them, neurons with a defined ratio"),
        Column("ratio_median", "float64", "median over neurons of the log ratio (ablation.ratio); "
               "swapped: the median over swaps of each swap's median"),
        Column("ratio_lo", "float64", "bootstrap (1 - alpha) interval of the median (resampling "
               "neurons): low; swapped: the central (1 - alpha) range of the swaps' medians"),
        Column("ratio_hi", "float64", "and high"),
        Column("n_positive", "float64", "neurons with a positive log ratio (NaN for the "
               "control)"),
        Column("n_negative", "float64", "neurons with a negative log ratio (NaN for the "
               "control)"),
        Column("sign_p", "float64", "exact two-sided sign test p (NaN for the control)"),
        Column("mde_sd", "float64", "minimal detectable effect: the shift of normal log ratios, "
               "in sd units, that the sign test finds with 80% power at alpha with this many "
               "neurons (inf when too few for it ever to reject)"),
        Column("mde_log_ratio", "float64", "mde_sd times the sd of the layer's log ratios: the "
               "same in log-ratio units"),
        Column("top_vs_random_median", "float64", "median of ablation.top_vs_random (NaN for "
               "the control)"),
        Column("closeness_excess_median", "float64", "median of ablation.closeness_excess "
               "(swapped: median over swaps)"),
        Column("closeness_excess_lo", "float64", "bootstrap (1 - alpha) interval: low "
               "(swapped: central range over swaps)"),
        Column("closeness_excess_hi", "float64", "and high"),
        Column("verdict", "str", "neuron: supported, opposite, inconclusive or not testable; "
               "swapped: calibrated or not calibrated (rule in the rule column)"),
        Column("n_swaps", "int32", "random swaps of the control (same on both rows)"),
        Column("swap_supported", "int32", "swaps the layer rule calls supported"),
        Column("swap_opposite", "int32", "swaps the layer rule calls opposite"),
        Column("swap_rate", "float64", "(swap_supported + swap_opposite) / n_swaps: the "
               "control's call rate, at most alpha by design"),
        Column("swap_rate_lo", "float64", "its Clopper-Pearson (1 - alpha) interval: low"),
        Column("swap_rate_hi", "float64", "and high"),
        Column("rule", "str", "the verdict's rule in words"),
    ],
}


def _cast(values: pd.Series, dtype: str) -> pd.Series:
    if dtype == "str":
        return values.astype(object).map(lambda v: "" if v is None else str(v))
    if dtype in ("list", "object"):
        return values
    if dtype == "bool":
        return values.astype(bool)
    return values.astype(np.dtype(dtype))


def conform(frame: pd.DataFrame, table: str, extra: list[Column] | None = None) -> pd.DataFrame:
    """`frame` with exactly the declared columns of `table` (plus `extra`), in order and dtype.

    A missing or undeclared column is a bug in the writer: it raises instead of writing a
    table the documentation does not describe.
    """
    columns = TABLES[table] + list(extra or [])
    names = [c.name for c in columns]
    missing = [n for n in names if n not in frame.columns]
    unknown = [n for n in frame.columns if n not in names]
    if missing or unknown:
        raise ValueError(f"table '{table}': missing columns {missing}, undeclared columns "
                         f"{unknown} (declare them in intraneuron.analysis.columns)")
    return pd.DataFrame({c.name: _cast(frame[c.name], c.dtype) for c in columns})


def fdr_columns() -> list[Column]:
    return [Column(p[:-2] + "_q", "float64", f"Benjamini-Hochberg q of {p} across the layer's "
                   "rows of the same kind") for p in FDR_COLUMNS]


def markdown() -> str:
    """docs/tables.md: every table and column, from the definitions above."""
    lines = ["# Output tables", "", "Generated from `src/intraneuron/analysis/columns.py` by "
             "`python -m intraneuron.analysis.columns > docs/tables.md`; do not edit by hand.",
             "", __doc__.split("\n\n", 1)[1].strip(), ""]  # fmt: skip
    extra = {"neurons": fdr_columns()}
    for name, columns in TABLES.items():
        lines += [f"## {name}", "", "| column | dtype | meaning |", "| --- | --- | --- |"]
        for c in columns + extra.get(name, []):
            lines.append(f"| `{c.name}` | {c.dtype} | {c.meaning} |")
        lines.append("")
    lines += ["## layers", "", "One row per (layer, kind): for every metric `m` of the neurons "
              "table listed in `intraneuron.analysis.layers.SUMMARY`, `m_median`, `m_lo` and "
              "`m_hi` (bootstrap 95% interval of the median over neurons), and per segment `s` "
              "of each scheme the mean homogeneity, double-centred homogeneity, null mean and "
              "share with p < alpha (`<scheme>_<statistic>_<s>`).", ""]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
