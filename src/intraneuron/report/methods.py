"""The Methods section, written from the configuration the run actually used.

Every number and choice in the text comes from `config` (with the schema's defaults filled in
for keys a direct caller left out), so the page cannot drift from what was computed.
"""

from __future__ import annotations

from html import escape

from ..analysis.criteria import CLAIM_RULE, LEVEL_RULE
from ..tensors import NEURON_TENSOR, neuron_tensor


def _v(value) -> str:
    """A config value, monospaced."""
    return f"<code>{escape(str(value))}</code>"


def corpus_text(corpus: dict) -> str:
    source = corpus["source"]
    if source == "huggingface":
        what = (f"the Hugging Face dataset {_v(corpus.get('dataset'))} (configuration "
                f"{_v(corpus.get('dataset_config'))}, split {_v(corpus.get('split'))})")
    elif source == "wordnet":
        what = (f"the glosses of WordNet 3.0 read from {_v(corpus.get('path') or '/usr/share/wordnet')}")
    else:
        what = f"{escape(source)} files matching {_v(corpus.get('path'))}"
    cap = corpus.get("max_tokens")
    cap_text = (f"capped at {_v(f'{cap:,}')} content tokens" if cap else "with no token cap")
    window = corpus.get("window_tokens")
    window_text = f", cut into windows of {_v(window)} tokens" if window else ""
    return f"{what}, {cap_text}{window_text}"


def clustering_text(a: dict, count: str) -> str:
    if a["clustering"] == "spectral":
        return (f"spectral clustering (scikit-learn, affinity (1 + cosine) / 2) into {count}")
    if a["clustering"] == "hdbscan":
        return (f"HDBSCAN (scikit-learn, cosine distance, smallest cluster "
                f"{_v(a['hdbscan_min_cluster_size'])} tokens; it chooses the number of clusters)")
    return (f"agglomerative hierarchical clustering with {_v(a['linkage'])} linkage on cosine "
            f"distance, into {count}")


def selectivity_text(a: dict) -> str:
    if a["selectivity"] == "none":
        return ""
    rule = ("a mean activation above zero" if a["selectivity"] == "positive" else
            f"a mean activation above zero and at least {_v(a['selectivity_fraction'])} of the "
            f"neuron's top mean")
    return (f"Only core tokens with {rule} are analysed (selectivity {_v(a['selectivity'])}); a "
            f"neuron with fewer than {_v(a['min_tokens'])} such tokens is excluded. ")


def segment_cut_text(a: dict) -> str:
    if a["segment_cut"] == "value":
        return ("cut at equal-width bands of the neuron's core-token mean activations (empty "
                "bands dropped)")
    return "of equal size by rank"


def proxy_text(a: dict) -> str:
    if a["proxy"] == "sentence_model":
        return (f"the cosine similarity of each token's text embedded by the sentence model "
                f"{_v(a.get('sentence_model'))}")
    if a["proxy"] == "wordnet":
        return ("shared membership in WordNet 3.0's supersenses (lexicographer files, "
                "human-curated categories) of the token's word; tokens that are not WordNet "
                "words have no vector, and neurons with too few that are (below "
                f"{_v(a['min_proxy_coverage'])} of their core tokens) are excluded")
    return "the cosine similarity of the model's own input token embeddings"


def cluster_count_text(a: dict) -> str:
    if a["n_clusters"] != "auto":
        return f"a fixed number of {_v(a['n_clusters'])} clusters"
    if a["cluster_selection"] == "distance_threshold":
        return (f"cutting the dendrogram at cosine distance {_v(a['distance_threshold'])}, "
                f"clamped to {_v(a['min_clusters'])}–{_v(a['max_clusters'])} clusters")
    return (f"the number of clusters between {_v(a['min_clusters'])} and "
            f"{_v(a['max_clusters'])} with the highest mean silhouette (cosine distance)")


def model_paragraph(config: dict) -> str:
    model = config["model"]
    layers = ", ".join(str(x) for x in config.get("layers", []))
    n_neurons = config.get("n_neurons")
    neurons = (f"The first {_v(n_neurons)} MLP neurons" if n_neurons else "All MLP neurons")
    revision = f" at revision {_v(model['revision'])}" if model.get("revision") else ""
    weights = (f" with <strong>random weights</strong> (the architecture's own initialisation, "
               f"seed {_v(model['init_seed'])}): a control, not a trained model"
               if model.get("weights") == "random" else "")
    return (f"<strong>Model and neurons.</strong> {neurons} of layer(s) {_v(layers)} of "
            f"{_v(model.get('id', ''))}{revision}{weights} (architecture "
            f"{_v(model['architecture'])}, compute dtype {_v(model['dtype'])}). A neuron's "
            f"activation is the input of the MLP's output projection: "
            f"{' '.join(neuron_tensors(model['architecture']))}")


def neuron_tensors(architecture: str) -> list[str]:
    """The sentence for the configured architecture, or every one when it is detected."""
    return ([escape(neuron_tensor(architecture))] if architecture in NEURON_TENSOR
            else [escape(text) for text in NEURON_TENSOR.values()])  # fmt: skip


def corpus_paragraph(config: dict) -> str:
    return (f"<strong>Corpus.</strong> {corpus_text(config['corpus'])}. For every neuron and "
            f"token type the mean and maximum activation over all occurrences are accumulated "
            f"exactly while the corpus is streamed through the model.")


def core_paragraph(config: dict) -> str:
    core, a = config["core_tokens"], config["analysis"]
    special = "special tokens excluded" if core["exclude_special"] else "special tokens allowed"
    return (f"<strong>Core tokens.</strong> A neuron's {_v(core['k'])} core tokens are the "
            f"token types with the highest mean activation among those occurring at least "
            f"{_v(core['min_count'])} times ({special}), ranked from the highest (rank 0) in "
            f"float64, ties in a random order seeded per neuron (never by token id, whose order "
            f"is the vocabulary's). A neuron whose core tokens tie in more than "
            f"{_v(a['max_tied_share'])} of cases (among themselves or with a type left out of "
            f"the core set) is excluded from every claim and counted in the summary. Each core "
            f"token keeps the context of its maximally activating occurrence "
            f"({_v(core['context_tokens'])} tokens on each side).")


def clusters_paragraph(config: dict) -> str:
    a = config["analysis"]
    return (f"<strong>Top-down: categorical clusters.</strong> Categorical proximity is "
            f"{proxy_text(a)}. Core tokens are clustered by "
            f"{clustering_text(a, cluster_count_text(a))}. Clusters are numbered by decreasing "
            f"mean activation (cluster 0 = most activating) and named by their "
            f"{_v(a['cluster_name_tokens'])} most central tokens.")


def segments_paragraph(config: dict) -> str:
    a = config["analysis"]
    return (f"<strong>Bottom-up: activation segments.</strong> {selectivity_text(a)}The ranking "
            f"is cut into {_v(a['n_segments'])} coarse segments and {_v(a['fine_segments'])} "
            f"fine segments (segment 0 = highest activations), {segment_cut_text(a)}. A "
            f"segment's homogeneity is the mean pairwise cosine similarity of its tokens.")


def statistics_paragraph(config: dict) -> str:
    a = config["analysis"]
    return (f"<strong>Statistics.</strong> Each neuron's ranking is compared with "
            f"{_v(a['permutations'])} random permutations of its own core tokens (seed "
            f"{_v(a['seed'])}, one stream per neuron) and with {_v(a['geometry_surrogates'])} "
            f"geometry surrogates (Moran spectral randomizations of its order over the proxy "
            f"similarity of its core tokens, which keep the order's smoothness in the proxy "
            f"space). Every per-neuron statistic (segment "
            f"homogeneity, its slope over segments, the top segment's margin over the others "
            f"and its excess over the trend of the others, adjusted mutual information (AMI) of "
            f"segments and clusters, runs of cluster labels, Kruskal-Wallis H of activation rank "
            f"across clusters with effect size ε² = H / (n − 1), and the Spearman correlation of "
            f"cluster mean rank with distinctness standardised against its null) is computed for "
            f"every permutation by the same code, and its one-sided permutation p-value is "
            f"exact. Homogeneity is also computed on the double-centred similarity (each "
            f"token's mean similarity to the core set removed), so that a segment of typical "
            f"tokens is not mistaken for a category.")


def controls_paragraph(config: dict) -> str:
    a, core = config["analysis"], config["core_tokens"]
    return (f"<strong>Controls.</strong> Beside every neuron, through the same code: its core "
            f"tokens in a random order (shuffled: the calibration check), ranked by a "
            f"leave-one-out ridge read-out of their embeddings fitted to the neuron's "
            f"activations (linear surrogate: descriptive only, the smoothest version of the "
            f"neuron rather than a null), and for every {_v(a['random_direction_every'])}th "
            f"neuron a pseudo-neuron made of the top {_v(core['k'])} eligible token types along "
            f"a random direction of the embedding space (random direction: a linear read-out "
            f"that beyond-geometry verdicts must beat). The power check plants a proxy "
            f"neighbourhood on top of {_v(a['power_blocks'])} blocks of "
            f"{_v(a['power_block_size'])} pseudo-neurons (benchmark over WordNet supersenses and "
            f"smooth read-outs: docs/geometry-null.md). Enabled: "
            f"{_v(', '.join(a['controls']) or 'none')}.")


def claims_paragraph(config: dict) -> str:
    a = config["analysis"]
    return (f"<strong>Claims.</strong> Each claim is a list of criteria; each criterion is a "
            f"per-neuron test with a stated pass rule (α = {_v(a['alpha'])}); claims 1 and 3 "
            f"also carry effect statements (weak: the median AMI of related neurons below "
            f"{_v(a['weak_ami_max'])}; interleaved: their median interleaving index at least "
            f"{_v(a['interleaving_min'])}), which do not vote. Two levels, <em>exists</em> and "
            f"<em>beyond geometry</em>: {escape(LEVEL_RULE)} "
            f"{escape(CLAIM_RULE)} Layer-level numbers carry bootstrap 95% intervals over "
            f"neurons ({_v(a['bootstrap'])} resamples).")


PARAGRAPHS = (model_paragraph, corpus_paragraph, core_paragraph, clusters_paragraph,
              segments_paragraph, statistics_paragraph, controls_paragraph, claims_paragraph)


def methods_html(config: dict) -> str:
    """The Methods section: one paragraph per stage, each written from its config section
    (with the schema's defaults filled in)."""
    from ..config import with_defaults

    config = with_defaults(config)
    return "\n".join(f"<p>{paragraph(config)}</p>" for paragraph in PARAGRAPHS)
