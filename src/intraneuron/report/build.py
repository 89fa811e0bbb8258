"""`build_report`: the PNG figures and one self-contained HTML page.

The page must open from disk with no network: figures are embedded as base64 data URIs, CSS
and JS are inlined from `assets/`, and the neuron browser's data sits in a JSON script tag.
The HTML is written to a temporary sibling and renamed, so a failed build leaves no half file.
"""

from __future__ import annotations

import base64
import logging
from html import escape
from importlib import resources
from pathlib import Path

from ..h5io import atomic_path
from . import browser, figures, render
from .data import ReportData, example_neurons, load
from .methods import methods_html

log = logging.getLogger("intraneuron")

LARGE_MB = 50  # above this the page gets slow to open and to share

EXAMPLE_LABELS = {"strongest": "strongest effect", "typical": "typical effect",
                  "other": "example"}


def _asset(name: str) -> str:
    return resources.files("intraneuron.report").joinpath("assets", name).read_text("utf-8")


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figure(path: Path, alt: str, caption: str) -> str:
    png = path.read_bytes()
    width_px = int.from_bytes(png[16:20], "big")  # IHDR width of the PNG
    return render.figure(_data_uri(path), alt, caption, "fig-" + path.stem.replace("_", "-"),
                         width=round(width_px * 96 / figures.DPI))


def _results_section(data: ReportData, out: Path) -> str:
    k = (data.config.get("core_tokens") or {}).get("k", "k")
    parts = [
        "<h3>Calibration: every criterion on neurons and on controls</h3>",
        render.calibration_table(data),
        "<h3>Layers compared</h3>",
        render.contrasts_table(data),
        "<h3>Effect sizes, neurons beside their controls</h3>",
        render.layers_table(data),
        '<p class="note">Medians over a layer\'s judged neurons (excluded ones left out) with '
        "bootstrap 95% intervals (resampling neurons). Shuffled: the neuron's core tokens in "
        "random order; linear surrogate: ranked by a leave-one-out ridge read-out of their "
        "embeddings; random direction: the top tokens along a random direction of the "
        "embedding space. \"Typicality removed\": homogeneity on the double-centred similarity, "
        "so a segment does not score high merely by holding the tokens most typical of the "
        "whole core set.</p>",
        _figure(figures.homogeneity_by_segment(data, out),
                "Homogeneity by activation segment, coarse and fine, per layer",
                "<strong>Homogeneity by activation segment.</strong> Top: mean pairwise cosine "
                "similarity of the tokens in each activation segment (0 = highest mean "
                "activation), averaged over neurons with a 95% confidence band; dashed: the same "
                f"for random segments of the neuron's own {escape(str(k))} core tokens "
                "(permutation null). Bottom: the segment's z score against that null. Claim 2 "
                "predicts values falling from left to right."),
        _figure(figures.neuron_metrics(data, out), "Distributions of per-neuron metrics",
                "<strong>Per-neuron metrics.</strong> Top-segment homogeneity z (coarse and "
                "fine), adjusted mutual information between segment and cluster labels (raw and "
                "as z against the permutation null), the Kruskal-Wallis effect size of "
                "activation across clusters, and the number of clusters chosen."),
        _figure(figures.interleaving(data, out), "Interleaving of clusters along the ranking",
                "<strong>Interleaving.</strong> Reading the core tokens from the highest to the "
                "lowest activation, how often does the cluster label change? Runs z &lt; 0 and "
                "an interleaving index near 0 mean clusters occupy contiguous activation "
                "ranges; values near chance (z ≈ 0, index ≈ 1) mean segments interleave across "
                "clusters."),
        _figure(figures.cluster_distinctness(data, out),
                "Cluster activation position against distinctness",
                "<strong>Cluster activation vs distinctness.</strong> Each dot is a cluster; x: "
                "its rank among its neuron's clusters by mean activation, y: how separated its "
                "activations are from the other clusters' (mean absolute Cliff's δ; small "
                "clusters score high by chance). Right: the per-neuron Spearman correlation of "
                "cluster mean rank and distinctness standardised against its permutation null "
                "(claim 3C), for neurons and their shuffled controls."),
    ]
    return "\n".join(parts)


def _openai_section(data: ReportData, out: Path) -> str:
    """Agreement of our core tokens with OpenAI's activation-based related tokens."""
    frame = data.openai
    top_n = (int(frame["top_n"].iloc[0]) if frame is not None and len(frame)
             and "top_n" in frame else None)
    source = data.openai_meta.get("openai_directory")
    where = f" (files read from <code>{escape(str(source))}</code>)" if source else ""
    top = f"top {top_n:,}" if top_n else "top"
    parts = [
        "<h3>Comparison with OpenAI's related tokens</h3>",
        "<p>OpenAI's automated-interpretability release lists, per neuron, the tokens with the "
        f"highest average activation over WebText{where}. Per neuron: the share of our {top} "
        f"core tokens that are also among its {top} (exact decoded strings, out of the most "
        "that could be shared), the Jaccard index of the two sets, and the share when "
        "surrounding whitespace and case are ignored. Statistics are over neurons with a "
        "file.</p>",
        render.openai_table(data),
    ]
    if frame is not None and len(frame):
        parts.append(_figure(
            figures.openai_overlap(frame, data.layer_ids, out),
            "Distribution of the overlap with OpenAI's related tokens, per layer",
            "<strong>Overlap with OpenAI's related tokens.</strong> Share of the top tokens "
            "that our core tokens and OpenAI's activation-based list have in common, per "
            "neuron with a file. The corpora differ (ours and WebText), so a low overlap can "
            "reflect the corpus as much as the neuron."))
    return "\n".join(parts)


def _examples_section(data: ReportData, out: Path,
                      examples: dict[int, list[tuple[int, str]]]) -> str:
    keys = {(layer, n) for layer, picked in examples.items() for n, _ in picked}
    tokens = data.tokens_for(keys)
    by_neuron = dict(list(tokens.groupby(["layer", "neuron"], sort=False))) if len(tokens) else {}
    clusters = (dict(list(data.clusters.groupby(["layer", "neuron"], sort=False)))
                if len(data.clusters) else {})
    rows = data.neurons.set_index(["layer", "neuron"]) if len(data.neurons) else None
    parts = ['<p class="note">Per layer, the neurons with the strongest top-segment effect and '
             "typical ones (effect closest to the layer's median). Bars: core tokens in "
             "activation order, coloured by cluster; solid lines: segment boundaries, dotted: "
             "fine segments. Open any of them in the neuron browser for token contexts.</p>"]
    for layer, picked in examples.items():
        if not picked:
            continue
        parts.append(f"<h3>Layer {layer}</h3>")
        for neuron, why in picked:
            tk = by_neuron.get((layer, neuron))
            if tk is None or tk.empty:
                continue
            subtitle = EXAMPLE_LABELS.get(why, why)
            if rows is not None and (layer, neuron) in rows.index:
                r = rows.loc[(layer, neuron)]
                subtitle = (f"{subtitle}; {render.fmt(r.get('n_clusters'))} clusters, top-segment "
                            f"homogeneity z = {render.fmt(r.get('top_coarse_z'))}, AMI = "
                            f"{render.fmt(r.get('ami_coarse'))}")
            cl = clusters.get((layer, neuron))
            path = figures.example_neuron(tk, cl if cl is not None else tokens.iloc[0:0], layer,
                                          neuron, subtitle, out)
            parts.append(_figure(
                path, f"Core tokens of layer {layer} neuron {neuron}",
                f"Layer {layer}, neuron {neuron} ({escape(subtitle)}). "
                f'<a href="#L{layer}N{neuron}">Open in the neuron browser</a>.'))
    if len(parts) == 1:
        parts.append("<p>No example neurons (report.example_neurons is 0 or nothing was "
                     "analysed).</p>")
    return '<div class="examples">' + "\n".join(parts) + "</div>"


def _browser_section(data: ReportData, selections: list[browser.Selection],
                     payload: dict) -> str:
    seed = (data.config.get("analysis") or {}).get("seed", 0)
    budget = (data.config.get("report") or {}).get("browser_neurons", 2000)
    lines = []
    for sel in selections:
        why = payload["included"][str(sel.layer)]["why"]
        if "all" in why:
            detail = "all of them"
        else:
            bits = []
            if why.get("example"):
                bits.append(f"{why['example']} example neurons")
            if why.get("strongest"):
                bits.append(f"the {why['strongest']} with the largest top-segment homogeneity z")
            if why.get("sample"):
                bits.append(f"{why['sample']} sampled at random (seed {escape(str(seed))})")
            detail = ", ".join(bits)
        lines.append(f"<li>Layer {sel.layer}: <strong>{len(sel.neurons):,} of {sel.total:,}"
                     f"</strong> neurons embedded ({detail}).</li>")
    budget_text = "all neurons" if budget is None else f"at most {budget:,} neurons per layer"
    return f"""
<p>Look up any embedded neuron by layer and index, or find the neurons whose core tokens
contain a token. The page embeds {budget_text} (<code>report.browser_neurons</code>):</p>
<ul id="nb-included">{''.join(lines)}</ul>
<div class="nb-controls">
  <form id="nb-neuron-form" autocomplete="off">
    <label>Layer <select id="nb-layer"></select></label>
    <label>Neuron <input id="nb-neuron" type="number" min="0" list="nb-neuron-list"
      placeholder="index"></label>
    <datalist id="nb-neuron-list"></datalist>
    <button type="submit" id="nb-show">Show neuron</button>
  </form>
  <form id="nb-token-form" autocomplete="off">
    <label>Token <input id="nb-token" type="search" placeholder="e.g. dog"></label>
    <button type="submit" id="nb-find">Find neurons</button>
  </form>
</div>
<div id="nb-picks" class="note"></div>
<div id="nb-message" role="status"></div>
<div id="nb-results"></div>
<div id="nb-view"></div>
<script id="browser-data" type="application/json">{browser.script_json(payload)}</script>
"""


def page(data: ReportData, sections: dict[str, str]) -> str:
    title = (data.config.get("report") or {}).get("title", "Intra-neuronal attention")
    model = data.extraction.get("model_id") or (data.config.get("model") or {}).get("id", "")
    layers = ", ".join(str(x) for x in data.layer_ids)
    names = {"summary": "Summary", "methods": "Methods", "results": "Results",
             "examples": "Example neurons", "browser": "Neuron browser",
             "provenance": "Provenance"}
    nav = "".join(f'<a href="#{key}">{names[key]}</a>' for key in sections)
    body = "\n".join(f'<section id="{key}"><h2>{names[key]}</h2>\n{html}\n</section>'
                     for key, html in sections.items())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="intraneuron">
<title>{escape(title)} — {escape(str(model))}</title>
<link rel="icon" href="data:,">
<style>{_asset("report.css")}</style>
</head>
<body>
<header class="top"><div class="wrap">
<h1>{escape(title)}</h1>
<p>MLP neurons of <code>{escape(str(model))}</code>, layer(s) {escape(layers)} · after Pichat et
al. (2025), “Intra-neuronal attention within language models” (arXiv 2503.12992) · config
<code>{escape(data.config_hash)}</code></p>
</div></header>
<nav class="sections"><div class="wrap">{nav}</div></nav>
<main class="wrap">
{body}
</main>
<script>{_asset("browser.js")}</script>
</body>
</html>
"""


def build_report(inputs: dict[str, str], html_path: str, figures_dir: str, config: dict,
                 config_hash: str) -> None:
    """Write the figures into `figures_dir` and the self-contained report to `html_path`."""
    data = load(inputs, config, config_hash)
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.png"):  # the directory is this rule's output: no foreign files
        stale.unlink()
    examples = {layer: example_neurons(data, layer) for layer in data.layer_ids}
    selections = browser.select(data, {k: [n for n, _ in v] for k, v in examples.items()})
    payload = browser.payload(data, selections, figures.CLUSTER_PALETTE)
    sections = {
        "summary": render.headline(data) + "<h3>Claims and their criteria, per layer</h3>"
        + render.claims_table(data),
        "methods": methods_html(config),
        "results": _results_section(data, out)
        + (_openai_section(data, out) if data.openai is not None else ""),
        "examples": _examples_section(data, out, examples),
        "browser": _browser_section(data, selections, payload),
        "provenance": render.provenance(data),
    }
    html = page(data, sections)
    with atomic_path(html_path) as tmp:
        Path(tmp).write_text(html, encoding="utf-8")
    size_mb = len(html.encode()) / 1e6
    log.info("report: %s (%.1f MB, %d neurons in the browser), %d figures in %s", html_path,
             size_mb, len(payload["neurons"]), len(list(out.glob("*.png"))), out)
    if size_mb > LARGE_MB:
        log.warning("the report is %.0f MB; lower report.browser_neurons (now %s) for a lighter "
                    "page", size_mb, (config.get("report") or {}).get("browser_neurons"))
