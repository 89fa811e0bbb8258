"""`build_overview`: the run's front page (report/index.html) across models and variants.

Each model has its own full report (`build_report`, paper setting); this page puts the models
side by side (verdicts and headline effects with intervals, beside the same numbers for the
controls), shows whether each verdict survives the other analysis variants (robustness matrix
and its holds-in summary), the ablation summary when there is one, and links to the model pages.
Like the model pages it is self-contained (inline CSS, autoescaped Jinja2, no network) and is
written atomically.
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from ..analysis.robustness import PAPER
from ..config import subset_hash
from ..h5io import atomic_path
from . import figures, findings, meta, render
from .pages import href, twin, write_csv

log = logging.getLogger("intraneuron")

SECTIONS = {"findings": "What this run found", "models": "Models side by side",
            "robustness": "Robustness across variants", "ablation": "Ablation",
            "reports": "Model reports", "cite": "How to cite"}  # fmt: skip
# (metric summarised in layers.parquet, label); a metric without _lo/_hi is a share
HEADLINE = [("top_coarse_z", "top-segment homogeneity z"),
            ("kw_epsilon2", "Kruskal-Wallis ε²"),
            ("ami_coarse", "AMI(coarse segments, clusters)"),
            ("cluster_structure_frac", "share with cluster structure")]  # fmt: skip
LEVELS = render.LEVELS
HOLDS_CLASS = {"all": "verdict-yes", "most": "verdict-mixed", "few": "verdict-mixed",
               "none": "verdict-no", "not testable": "verdict-na"}  # fmt: skip


@dataclass(frozen=True)
class ModelVariant:
    """The merged tables of one (model, variant)."""

    model: str
    variant: str
    claims: pd.DataFrame
    layers: pd.DataFrame
    settings: dict = field(default_factory=dict)
    criteria: pd.DataFrame | None = None  # the criteria table, for the pass-rate figure


def _asset(name: str) -> str:
    return resources.files("intraneuron.report").joinpath("assets", name).read_text("utf-8")


def _paper_run(runs: list[ModelVariant], model: str) -> ModelVariant | None:
    """The model's run in the paper's setting (else its first variant, so nothing is hidden)."""
    mine = [r for r in runs if r.model == model]
    return next((r for r in mine if r.variant == PAPER), mine[0] if mine else None)


def _verdict_rows(claims: pd.DataFrame, claim_ids: list[int],
                  control: tuple[str, pd.DataFrame] | None = None) -> list[dict]:
    """Per layer: for each claim the two verdicts (None when the claim was not judged), each
    with the name of the random-weights control of the same architecture when that control is
    supported too at that level (a finding a random network shares is labelled as such)."""
    index = claims.set_index(["layer", "claim"])
    shared = control[1].set_index(["layer", "claim"]) if control else None

    def twin(layer: int, claim: int, col: str, verdict: str) -> str | None:
        if shared is None or verdict != "supported" or (layer, claim) not in shared.index:
            return None
        return control[0] if shared.loc[(layer, claim), col] == "supported" else None

    rows = []
    for layer in sorted(int(x) for x in claims["layer"].unique()):
        cells = [[(label, index.loc[(layer, c), col],
                   twin(layer, c, col, index.loc[(layer, c), col])) for col, label in LEVELS]
                 if (layer, c) in index.index else None for c in claim_ids]  # fmt: skip
        rows.append({"layer": layer, "cells": cells})
    return rows


def _twin_name(name: str, models: dict) -> str | None:
    """The random-weights control of a pretrained model: a random model with the same id."""
    if models.get(name, {}).get("weights", "pretrained") == "random":
        return None
    return twin(name, models)


def _random_twin(name: str, models: dict, runs: list[ModelVariant]) -> tuple | None:
    """The random-weights twin of a pretrained model with its claims, if it was run."""
    twin = _twin_name(name, models)
    run = _paper_run(runs, twin) if twin else None
    return (twin, run.claims) if run is not None else None


def _effect(row: pd.Series, metric: str) -> dict | None:
    if f"{metric}_median" in row:
        return {"value": row[f"{metric}_median"], "lo": row[f"{metric}_lo"],
                "hi": row[f"{metric}_hi"], "share": False}  # fmt: skip
    if metric in row:
        return {"value": row[metric], "share": True}
    return None


def _effect_rows(layers: pd.DataFrame, metrics: list[str]) -> list[dict]:
    """Per layer: real neurons first, then each control kind, with the headline effects."""
    kinds = [k for k in render.KIND_LABELS if k in set(layers["kind"])]
    rows = []
    for layer, group in layers.groupby("layer", sort=True):
        by_kind = group.set_index("kind")
        units = [{"kind": k, "label": render.KIND_LABELS[k], "control": k != "neuron",
                  "effects": [_effect(by_kind.loc[k], m) for m in metrics]}
                 for k in kinds if k in by_kind.index]  # fmt: skip
        rows.append({"layer": int(layer), "units": units})
    return rows


def _models(runs: list[ModelVariant], models: dict, hrefs: dict) -> dict:
    """Section (a): per model its paper-setting verdicts and headline effects."""
    shown = [m for m in models if _paper_run(runs, m) is not None]
    claims = pd.concat([_paper_run(runs, m).claims for m in shown] or [pd.DataFrame(
        columns=["claim", "claim_text"])], ignore_index=True)
    claim_ids = sorted(int(c) for c in claims["claim"].unique())
    texts = claims.drop_duplicates("claim").set_index("claim")["claim_text"]
    layers = [_paper_run(runs, m).layers for m in shown]
    present = set().union(*(set(f.columns) for f in layers)) if layers else set()
    metrics = [(m, label) for m, label in HEADLINE
               if f"{m}_median" in present or m in present]  # fmt: skip
    blocks = []
    for name in shown:
        run, info = _paper_run(runs, name), models[name]
        blocks.append({
            "name": name, "id": info.get("id", ""), "weights": info.get("weights", "pretrained"),
            "variant": run.variant, "href": hrefs.get(name),
            "verdicts": _verdict_rows(run.claims, claim_ids, _random_twin(name, models, runs)),
            "effects": _effect_rows(run.layers, [m for m, _ in metrics])
            if len(run.layers) else [],
        })  # fmt: skip
    return {"claims": [(c, texts.get(c, "")) for c in claim_ids], "metrics": metrics,
            "blocks": blocks, "controls": [b for b in blocks if b["weights"] == "random"]}


def _variant_order(matrix: pd.DataFrame) -> list[dict]:
    """Variants in first-seen order with the paper's first, each with its settings in words."""
    first = matrix.drop_duplicates("variant")
    first = pd.concat([first[first["paper"]], first[~first["paper"]]])
    return [{"name": r["variant"], "paper": bool(r["paper"]), "settings": r["settings"]}
            for _, r in first.iterrows()]


def _holds_lines(summary: pd.DataFrame) -> list[dict]:
    """Per claim: each layer's holds-in outcome at both levels, with counts and paper verdict."""
    lines = []
    for claim, group in summary.groupby("claim", sort=True):
        layers = []
        for layer, rows in group.groupby("layer", sort=True):
            levels = [{**r, "css": HOLDS_CLASS.get(r["holds_in"], "verdict-mixed")}
                      for r in rows.to_dict("records")]  # fmt: skip
            layers.append({"layer": int(layer), "levels": levels})
        lines.append({"claim": int(claim), "text": group["claim_text"].iloc[0],
                      "layers": layers})
    return lines


def _robustness(matrix: pd.DataFrame, summary: pd.DataFrame, models: dict) -> dict:
    """Section (b): per model the claims x layers x variants matrix and the holds-in lines."""
    blocks = []
    order = list(models) + [m for m in matrix["model"].unique() if m not in models]
    for name in order:
        mine = matrix[matrix["model"] == name]
        if mine.empty:
            continue
        variants = _variant_order(mine)
        cell = {(r["claim"], r["layer"], r["variant"]): r for r in mine.to_dict("records")}
        keys = sorted({(int(c), int(layer)) for c, layer in zip(mine["claim"], mine["layer"],
                                                                 strict=True)})  # fmt: skip
        rows = [{"claim": c, "layer": layer,
                 "cells": [[(label, cell[(c, layer, v["name"])][col]) for col, label in LEVELS]
                           if (c, layer, v["name"]) in cell else None for v in variants]}
                for c, layer in keys]  # fmt: skip
        blocks.append({"name": name, "variants": variants, "rows": rows,
                       "lines": _holds_lines(summary[summary["model"] == name])})
    rule = summary["rule"].iloc[0] if len(summary) else ""
    return {"blocks": blocks, "rule": rule}


def _ablation(ablation: dict[str, pd.DataFrame], models: dict) -> list[dict]:
    """Section (c): per model and layer the ablation ratio of each kind, with its verdict."""
    blocks = []
    for name in [m for m in models if m in ablation] + [m for m in ablation if m not in models]:
        frame = ablation[name]
        if frame is None or frame.empty:
            continue
        frame = (frame.assign(control=frame["kind"] != "neuron")  # real neurons first
                 .sort_values(["layer", "control", "kind"]).drop(columns="control"))
        rows = frame.to_dict("records")
        twin = _twin_name(name, models)
        supported = set() if twin not in ablation else {
            int(r.layer) for r in ablation[twin].itertuples()
            if r.kind == "neuron" and r.verdict == "supported"}
        for r in rows:  # a verdict the random-weights twin shares is labelled
            shared = r["kind"] == "neuron" and r["verdict"] == "supported"
            r["twin"] = twin if shared and int(r["layer"]) in supported else None
        blocks.append({"name": name, "rows": rows,
                       "rule": frame["rule"].iloc[0] if "rule" in frame else ""})
    return blocks


def _hrefs(models: dict, pages: dict[str, str] | None, html_path: str) -> dict[str, str]:
    """Relative links from the overview to each model page (default models/<model>.html)."""
    here = Path(html_path).parent
    hrefs = {}
    for name in models:
        page = (pages or {}).get(name)
        rel = (Path(os.path.relpath(page, here)).as_posix() if page
               else f"models/{name}.html")  # fmt: skip
        hrefs[name] = quote(rel)
    return hrefs


def _files(runs: list[ModelVariant], models: dict, matrix: pd.DataFrame,
           summary: pd.DataFrame, html_path: str, files_dir: str | None) -> dict:
    """The overview's figure (PNG embedded, SVG beside it) and its tables as CSV, written into
    `files_dir` (default: `<page>_files` beside the page)."""
    page = Path(html_path)
    out = Path(files_dir) if files_dir else page.with_name(page.stem + "_files")
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("*.csv"), *out.glob("*.png"), *out.glob("*.svg")]:
        stale.unlink()
    paper = {m: _paper_run(runs, m) for m in models if _paper_run(runs, m) is not None}
    criteria = {m: r.criteria for m, r in paper.items() if r.criteria is not None}
    fig = figures.pass_rates_by_kind(criteria, out) if criteria else None
    claims = pd.concat([r.claims.assign(model=r.model, variant=r.variant) for r in runs]
                       or [pd.DataFrame()], ignore_index=True)
    csv = write_csv({"claims": claims, "robustness": matrix,
                           "robustness_summary": summary}, out, page)
    return {"csv": csv, "figure": None if fig is None else {
        "uri": "data:image/png;base64," + base64.b64encode(fig.read_bytes()).decode("ascii"),
        "png": href(fig, page), "svg": href(fig.with_suffix(".svg"), page),
        "id": "fig-pass-rates", "width": round(int.from_bytes(fig.read_bytes()[16:20], "big")
                                               * 96 / figures.DPI)}}


def overview_html(runs: list[ModelVariant], matrix: pd.DataFrame, summary: pd.DataFrame,
                  models: dict, config: dict, html_path: str = "report/index.html",
                  ablation: dict[str, pd.DataFrame] | None = None,
                  pages: dict[str, str] | None = None, files: dict | None = None) -> str:
    """The overview page as a string (see `build_overview`); `files` are the figure and CSV
    links `_files` wrote (None: the page offers none)."""
    hrefs = _hrefs(models, pages, html_path)
    ablation_blocks = _ablation(ablation or {}, models)
    sections = {k: v for k, v in SECTIONS.items() if k != "ablation" or ablation_blocks}
    paper = {m: _paper_run(runs, m).claims for m in models if _paper_run(runs, m) is not None}
    return render.render(
        "overview.html", sections=sections,
        title=config.get("report", {}).get("title", "Intra-neuronal attention"),
        css=_asset("report.css") + _asset("overview.css"), models=_models(runs, models, hrefs),
        robustness=_robustness(matrix, summary, models), ablation=ablation_blocks,
        reports=[{"name": m, "id": models[m].get("id", ""), "href": hrefs[m],
                  "weights": models[m].get("weights", "pretrained")} for m in models],
        findings=findings.findings(paper, models), hrefs=hrefs, links=[],
        files=files,
        stamp=meta.stamp(subset_hash(config)), cite=meta.citation(),
    )  # fmt: skip


def build_overview(runs: list[ModelVariant], matrix: pd.DataFrame, summary: pd.DataFrame,
                   models: dict, html_path: str, config: dict,
                   ablation: dict[str, pd.DataFrame] | None = None,
                   pages: dict[str, str] | None = None, files_dir: str | None = None) -> None:
    """Write the overview to `html_path` and its figure and CSV tables into `files_dir`.

    `models` maps a model name to {"id", "weights" ('pretrained' or 'random'), "layers"};
    `ablation` maps a model name to its ablation_layers table; `pages` maps a model name to its
    report page, linked relative to `html_path`.
    """
    files = _files(runs, models, matrix, summary, html_path, files_dir)
    html = overview_html(runs, matrix, summary, models, config, html_path, ablation, pages,
                         files)
    with atomic_path(html_path) as tmp:
        Path(tmp).write_text(html, encoding="utf-8")
    log.info("overview: %s (%d models, %d runs)", html_path, len(models), len(runs))
