"""The Methods section, written from the configuration the run actually used.

Every number and choice in the text comes from `config` (with the analysis defaults filled in
for keys a direct caller left out), so the page cannot drift from what was computed.
"""

from __future__ import annotations

from html import escape


def _v(value) -> str:
    """A config value, monospaced."""
    return f"<code>{escape(str(value))}</code>"


def _analysis(config: dict) -> dict:
    from ..analysis.params import DEFAULT_PARAMS

    merged = {"proxy": "input_embeddings", **DEFAULT_PARAMS}
    merged.update({k: v for k, v in (config.get("analysis") or {}).items() if v is not None})
    return merged


def corpus_text(corpus: dict) -> str:
    source = corpus.get("source", "huggingface")
    if source == "huggingface":
        what = (f"the Hugging Face dataset {_v(corpus.get('dataset'))} (configuration "
                f"{_v(corpus.get('dataset_config'))}, split {_v(corpus.get('split', 'train'))})")
    elif source == "wordnet":
        what = (f"the glosses of WordNet 3.0 read from {_v(corpus.get('path') or '/usr/share/wordnet')}")
    else:
        what = f"{escape(source)} files matching {_v(corpus.get('path'))}"
    cap = corpus.get("max_tokens")
    cap_text = (f"capped at {_v(f'{cap:,}')} content tokens" if cap else "with no token cap")
    window = corpus.get("window_tokens")
    window_text = f", cut into windows of {_v(window)} tokens" if window else ""
    return f"{what}, {cap_text}{window_text}"


def methods_html(config: dict) -> str:
    model = config.get("model") or {}
    core = config.get("core_tokens") or {}
    a = _analysis(config)
    layers = ", ".join(str(x) for x in config.get("layers", []))
    n_neurons = config.get("n_neurons")
    neurons = (f"The first {_v(n_neurons)} MLP neurons" if n_neurons else "All MLP neurons")
    revision = f" at revision {_v(model['revision'])}" if model.get("revision") else ""
    if a["proxy"] == "sentence_model":
        proxy = (f"the cosine similarity of each token's text embedded by the sentence model "
                 f"{_v(a.get('sentence_model'))}")
    else:
        proxy = "the cosine similarity of the model's own input token embeddings"
    if a["n_clusters"] != "auto":
        count = f"a fixed number of {_v(a['n_clusters'])} clusters"
    elif a["cluster_selection"] == "distance_threshold":
        count = (f"cutting the dendrogram at cosine distance {_v(a['distance_threshold'])}, "
                 f"clamped to {_v(a['min_clusters'])}–{_v(a['max_clusters'])} clusters")
    else:
        count = (f"the number of clusters between {_v(a['min_clusters'])} and "
                 f"{_v(a['max_clusters'])} with the highest mean silhouette (cosine distance)")
    special = ("special tokens excluded" if core.get("exclude_special", True)
               else "special tokens allowed")
    paragraphs = [
        f"<strong>Model and neurons.</strong> {neurons} of layer(s) {_v(layers)} of "
        f"{_v(model.get('id', ''))}{revision} (architecture {_v(model.get('architecture', 'auto'))}, "
        f"compute dtype {_v(model.get('dtype', 'auto'))}). A neuron's activation is its value "
        f"after the MLP's non-linearity (the input of the MLP's output projection).",
        f"<strong>Corpus.</strong> {corpus_text(config.get('corpus') or {})}. For every "
        f"neuron and token type the mean and maximum activation over all occurrences are "
        f"accumulated exactly while the corpus is streamed through the model.",
        f"<strong>Core tokens.</strong> A neuron's {_v(core.get('k', 100))} core tokens are the "
        f"token types with the highest mean activation among those occurring at least "
        f"{_v(core.get('min_count', 20))} times ({special}), ranked from the highest (rank 0). "
        f"Each keeps the context of its maximally activating occurrence "
        f"({_v(core.get('context_tokens', 12))} tokens on each side).",
        f"<strong>Top-down: categorical clusters.</strong> Categorical proximity is {proxy}. "
        f"Core tokens are clustered by agglomerative hierarchical clustering with "
        f"{_v(a['linkage'])} linkage on cosine distance, into {count}. Clusters are numbered "
        f"by decreasing mean activation (cluster 0 = most activating) and named by their "
        f"{_v(a['cluster_name_tokens'])} most central tokens.",
        f"<strong>Bottom-up: activation segments.</strong> The ranking is cut into "
        f"{_v(a['n_segments'])} equal-size coarse segments and {_v(a['fine_segments'])} fine "
        f"segments (segment 0 = highest activations). A segment's homogeneity is the mean "
        f"pairwise cosine similarity of its tokens.",
        f"<strong>Statistics.</strong> Each neuron is compared with {_v(a['permutations'])} "
        f"random permutations of its own ranking (seed {_v(a['seed'])}, one stream per "
        f"neuron): segment homogeneity, adjusted mutual information (AMI) between segments and "
        f"clusters, and the number of runs of cluster labels along the ranking each get a z "
        f"score and a one-sided p-value. Activation differences between clusters use "
        f"Kruskal-Wallis (effect size ε²), Dunn and Mann-Whitney tests with Holm correction. "
        f"p-values are corrected across each layer's neurons by Benjamini-Hochberg; "
        f"α = {_v(a['alpha'])} for every test and verdict.",
        f"<strong>Claims.</strong> Each claim is judged per layer by the stated rule shown next "
        f"to its verdict (thresholds: a weak relation means median AMI below "
        f"{_v(a['weak_ami_max'])}; interleaved means a median interleaving index of at least "
        f"{_v(a['interleaving_min'])}).",
    ]
    return "\n".join(f"<p>{p}</p>" for p in paragraphs)
