"""`build_report`: the PNG figures and one self-contained HTML page.

The page must open from disk with no network: figures are embedded as base64 data URIs, CSS
and JS are inlined from `assets/`, and the neuron browser's data are script files in a folder
beside the page, loaded on demand by `<script>` tags (see `browser`).
The markup is in `templates/` (Jinja2, autoescaped); this module makes the figures and gathers
what the templates show. The HTML is written to a temporary sibling and renamed, so a failed
build leaves no half file.
"""

from __future__ import annotations

import base64
import logging
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from ..analysis.diagnostics import clustering_diagnostics
from ..analysis.params import resolve_params
from ..h5io import atomic_path
from . import ablation, browser, figures, meta, pages, render
from .clustering_diagnostics import diagnostics_html
from .data import EFFECT, ReportData, example_neurons, load
from .methods import methods_html

log = logging.getLogger("intraneuron")

EXAMPLE_LABELS = {"strongest": "strongest effect", "typical": "typical effect",
                  "other": "example"}
SECTIONS = {"summary": "Summary", "methods": "Methods", "results": "Results",
            "examples": "Example neurons", "browser": "Neuron browser",
            "provenance": "Provenance"}


def _sections(with_ablation: bool) -> dict[str, str]:
    """The page's sections; the ablation section follows the results when the run has one."""
    if not with_ablation:
        return SECTIONS
    keys = list(SECTIONS)
    at = keys.index("results") + 1
    return {k: SECTIONS.get(k, "Ablation") for k in [*keys[:at], "ablation", *keys[at:]]}


def _asset(name: str) -> str:
    return resources.files("intraneuron.report").joinpath("assets", name).read_text("utf-8")


def _figure(path: Path) -> dict:
    """What the `figure` macro needs: id, data URI, width in CSS pixels (the figure's size in
    inches at 96 px per inch, so text in every figure appears at the same size) and the links
    to its PNG and SVG files (relative to the page: the figures folder is its sibling)."""
    png = path.read_bytes()
    width_px = int.from_bytes(png[16:20], "big")  # IHDR width of the PNG
    folder = quote(path.parent.name)
    return {"id": "fig-" + path.stem.replace("_", "-"),
            "uri": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
            "width": round(width_px * 96 / figures.DPI),
            "png": f"{folder}/{quote(path.name)}",
            "svg": f"{folder}/{quote(path.stem)}.svg" if path.with_suffix(".svg").exists()
            else None}


def _figures(data: ReportData, out: Path) -> dict:
    figs = {"homogeneity": figures.homogeneity_by_segment(data, out),
            "metrics": figures.neuron_metrics(data, out),
            "interleaving": figures.interleaving(data, out),
            "distinctness": figures.cluster_distinctness(data, out)}
    if data.openai is not None and len(data.openai):
        figs["openai"] = figures.openai_overlap(data.openai, data.layer_ids, out)
    return {key: _figure(path) for key, path in figs.items()}


def _examples(data: ReportData, out: Path,
              examples: dict[int, list[tuple[int, str]]]) -> list[tuple[int, list[dict]]]:
    """Per layer with picked neurons: each example's figure and subtitle."""
    keys = {(layer, n) for layer, picked in examples.items() for n, _ in picked}
    tokens = data.tokens_for(keys)
    by_neuron = dict(list(tokens.groupby(["layer", "neuron"], sort=False))) if len(tokens) else {}
    clusters = (dict(list(data.clusters.groupby(["layer", "neuron"], sort=False)))
                if len(data.clusters) else {})
    rows = data.neurons.set_index(["layer", "neuron"]) if len(data.neurons) else None
    layers = []
    for layer, picked in examples.items():
        if not picked:
            continue
        shown = []
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
            shown.append({"neuron": neuron, "subtitle": subtitle, "figure": _figure(path)})
        layers.append((layer, shown))
    return layers


def _browser(data: ReportData, selections: list[browser.Selection], manifest: dict) -> dict:
    """What the browser section says and the manifest JSON the page embeds."""
    lines = [{"layer": sel.layer, "total": sel.total,
              "files": len(manifest["blocks"].get(str(sel.layer), []))} for sel in selections]
    page = {"version": 2, "layers": manifest["layers"], "blocks": manifest["blocks"],
            "index": manifest["index"], "ids": manifest["ids"], "metrics": manifest["metrics"],
            "palette": figures.CLUSTER_PALETTE, "effect": EFFECT,
            "picks": browser.picks(selections), "wordpiece": browser.wordpiece(data)}
    size = manifest["bytes"]
    return {"lines": lines, "per_file": browser.NEURONS_PER_FILE,
            "size": f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB",
            "json": browser.script_json(page)}


def _clean(folder: Path, patterns: tuple[str, ...]) -> None:
    """Empty a directory output of its earlier files (no foreign or stale files in it)."""
    folder.mkdir(parents=True, exist_ok=True)
    for pattern in patterns:
        for stale in folder.glob(pattern):
            stale.unlink()


def _header(data: ReportData, html_path: str, site: dict | None) -> dict:
    """Title, model, control banner, links and build stamp of a model page."""
    name = Path(html_path).stem
    model = data.extraction.get("model_id") or data.config["model"]["id"]
    links = pages.model_links(name, html_path, site)
    return {"title": data.config["report"]["title"], "name": name, "model": model,
            "control": pages.control(name, data.config, links),
            "links": links["nav"], "stamp": meta.stamp(data.config_hash),
            "layers": ", ".join(str(x) for x in data.layer_ids)}


def _results(data) -> dict:
    """The results section's tables, with the clustering diagnostics of the real neurons."""
    frame = clustering_diagnostics(data.neurons, data.clusters,
                                   resolve_params(data.config["analysis"]))
    return {**render.results(data), "diagnostics": diagnostics_html(frame)}


def build_report(inputs: dict[str, str], html_path: str, figures_dir: str, config: dict,
                 config_hash: str, data_dir: str | None = None,
                 site: dict | None = None) -> None:
    """Write the figures into `figures_dir`, the neuron browser's data files and the tables as
    CSV into `data_dir` (default: `<page>_data` beside the page) and the page to `html_path`.

    `site` ({"models": {name: {"id", "weights"}}, "overview": path, "rules": [rule names]})
    links the page to the overview and to its random-weights twin or trained model, and names
    the workflow's rules for the stage times.
    """
    data = load(inputs, config, config_hash, (site or {}).get("rules"))
    page, out = Path(html_path), Path(figures_dir)
    data_out = Path(data_dir) if data_dir else page.with_name(page.stem + "_data")
    _clean(out, ("*.png", "*.svg"))
    _clean(data_out, ("*.js", "*.csv"))
    examples = {layer: example_neurons(data, layer) for layer in data.layer_ids}
    ablated = ablation.section(data, out)
    if ablated is not None:
        ablated["figure"] = _figure(ablated["figure"])
    selections = browser.select(data, {k: [n for n, _ in v] for k, v in examples.items()})
    manifest = browser.write_data(data, data_out, browser.relative_href(data_out, page))
    html = render.render(
        "page.html", sections=_sections(ablated is not None), **_header(data, html_path, site),
        css=_asset("report.css"), js=_asset("browser.js"), summary=render.summary(data),
        methods=methods_html(data.config), results=_results(data),
        k=data.config["core_tokens"]["k"], figures=_figures(data, out),
        openai=render.openai(data) if data.openai is not None else None,
        labels=render.labels(data), categories=render.categories(data), ablation=ablated, examples=_examples(data, out, examples),
        browser=_browser(data, selections, manifest), provenance=render.provenance(data),
        csv_links=pages.write_csv(render.csv_tables(data), data_out, page), cite=meta.citation())
    with atomic_path(html_path) as tmp:
        Path(tmp).write_text(html, encoding="utf-8")
    log.info("report: %s (%.1f MB; neuron browser data %.1f MB in %s), %d figures in %s",
             html_path, len(html.encode()) / 1e6, manifest["bytes"] / 1e6, data_out,
             len(list(out.glob("*.png"))), out)
