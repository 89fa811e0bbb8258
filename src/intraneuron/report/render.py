"""The report's Jinja2 environment, its number filters, and the data each template section shows.

Markup lives in `templates/`; this module only decides which rows and values the sections get.
Autoescaping is on: every value from a table or the config is escaped by the engine, and only
trusted fragments (inlined assets, figure data URIs, the Methods text, the browser's JSON) are
marked `|safe` in the templates.
"""

from __future__ import annotations

import math
from functools import cache

import jinja2
import numpy as np
import pandas as pd

from . import settings
from .data import ReportData, openai_by_layer

# Values smaller than this in magnitude are floating-point noise around an exact zero (e.g. an
# AMI of 5.7e-16 for identical partitions by chance): shown as 0, as the pages state.
RESOLUTION = 1e-9


def fmt(x, digits: int = 3) -> str:
    """A number for a table cell: '–' for missing, thousands separators, `digits` significant,
    0 below RESOLUTION."""
    if x is None or x is pd.NA:
        return "–"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)  # the template escapes it
    if not math.isfinite(f):
        return "–"
    if abs(f) < RESOLUTION:
        return "0"
    if f.is_integer() and abs(f) < 1e15:
        return f"{int(f):,}"
    return f"{f:.{digits}g}"


def finite(x) -> float | None:
    """`x` as a float, or None when it is missing, not a number or not finite."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def memory(mb) -> str:
    """Peak memory from a benchmark's MB: in MB below 1 GB, else in GB."""
    f = finite(mb)
    if f is None:
        return "–"
    return f"{f:,.0f} MB" if f < 1024 else f"{f / 1024:.2f} GB"


def fmt_p(p) -> str:
    f = finite(p)
    if f is None:
        return "–"
    return f"{f:.2g}" if f >= 1e-4 else f"{f:.1e}"


def pct(x) -> str:
    f = finite(x)
    return "–" if f is None else f"{100 * f:.1f}%"


def duration(seconds) -> str:
    s = finite(seconds)
    if s is None:
        return "–"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def verdict_class(verdict) -> str:
    """CSS class of a verdict: a level that cannot be judged is neutral ('not testable', 'not
    identifiable with this proxy'); negative wording is checked next ('not supported')."""
    v = str(verdict).strip().lower()
    if v.startswith(("not testable", "not identifiable")):
        return "verdict-na"
    if any(w in v for w in ("not", "reject", "contradict", "fail")) or v in ("no", "false"):
        return "verdict-no"
    if v.startswith("support") or v in ("yes", "true", "pass", "holds"):
        return "verdict-yes"
    return "verdict-mixed"


FILTERS = {"fmt": fmt, "fmt_p": fmt_p, "pct": pct, "duration": duration, "memory": memory,
           "verdict_class": verdict_class}


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("intraneuron.report", "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters.update(FILTERS)
    env.globals.update(FILTERS)  # also callable, for macros that take a formatter
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


def macro(name: str, *args) -> str:
    """One macro of `macros.html`, rendered on its own."""
    return str(getattr(environment().get_template("macros.html").module, name)(*args))


LEVELS = (("verdict_exists", "exists"), ("verdict_beyond_geometry", "beyond geometry"))
KIND_LABELS = {"neuron": "neurons", "shuffled": "shuffled (noise)",
               "surrogate": "linear surrogate", "random_direction": "random direction"}


def claim_groups(data: ReportData) -> list[dict]:
    """Per claim (in order): its text and, per layer, the two verdicts and the criteria rows."""
    if data.claims.empty:
        return []
    crit = data.criteria
    groups = []
    order = data.claims.sort_values(["claim", "layer"], kind="stable")
    for claim, grp in order.groupby("claim", sort=False):
        layers = []
        for _, r in grp.iterrows():
            mine = (crit[(crit["claim"] == claim) & (crit["layer"] == r["layer"])]
                    if len(crit) else crit)
            layers.append({"layer": int(r["layer"]),
                           "verdicts": [(label, r[col]) for col, label in LEVELS],
                           "criteria": mine.to_dict("records")})
        groups.append({"claim": claim, "text": grp["claim_text"].iloc[0], "layers": layers})
    return groups


def excluded(data: ReportData) -> dict | None:
    """How many real neurons were left out of the claims (per layer), and why."""
    out = data.excluded()
    if out.empty:
        return None
    counts = out.groupby("layer").size()
    reasons = out["exclusion_reason"].str.split(":").str[0].value_counts()
    return {"per_layer": [(int(k), v) for k, v in counts.items()],
            "reasons": list(reasons.items())}


def excluded_note(data: ReportData) -> str:
    return macro("excluded_note", excluded(data))


def summary(data: ReportData) -> dict:
    """The headline and the claims table."""
    n = data.neurons.groupby("layer").size() if len(data.neurons) else pd.Series(dtype=int)
    return {
        "model": data.extraction.get("model_id") or data.config["model"]["id"],
        "k": data.config["core_tokens"]["k"],
        "layer_sizes": [(int(k), v) for k, v in n.items()],
        "claims": claim_groups(data),
        "rule": data.claims["rule"].iloc[0] if len(data.claims) else "",
        "excluded": excluded(data),
    }


# (metric of the neurons table summarised in layers.parquet, label)
LAYER_ROWS = [
    ("n_clusters", "number of clusters"),
    ("silhouette", "silhouette of the chosen clustering"),
    ("mean_similarity", "homogeneity of all core tokens (chance level)"),
    ("top_coarse_homogeneity", "top-segment homogeneity (cosine)"),
    ("top_coarse_homogeneity_dc", "top-segment homogeneity, typicality removed"),
    ("top_coarse_z", "top-segment homogeneity z"),
    ("coarse_trend", "homogeneity slope (per segment step)"),
    ("coarse_top_margin", "top segment's margin over the next most homogeneous"),
    ("coarse_top_margin_dc", "the same, typicality removed"),
    ("fine_top_excess", "top decile above the trend of the others"),
    ("ami_coarse", "AMI(coarse segments, clusters)"),
    ("interleaving", "interleaving index"),
    ("kw_epsilon2", "Kruskal-Wallis ε² = H / (n − 1)"),
    ("distinct_rho", "ρ(cluster mean rank, distinctness z)"),
    ("surrogate_r2", "linear read-out R² (leave-one-out)"),
    ("proxy_coverage", "core tokens with a proxy vector"),
]


def layers_table(data: ReportData) -> list[dict]:
    """Per layer: medians with bootstrap intervals, real neurons beside each control kind (one
    table per layer, so that it fits the page's width)."""
    frame = data.layers
    if frame.empty:
        return []
    kinds = [k for k in KIND_LABELS if k in set(frame["kind"])]
    index = frame.set_index(["layer", "kind"])
    out = []
    for layer in sorted(int(x) for x in frame["layer"].unique()):
        cols = [(layer, kind) for kind in kinds if (layer, kind) in index.index]
        metrics = [(label, [tuple(index.loc[c, f"{metric}_{s}"] for s in ("median", "lo", "hi"))
                            for c in cols])
                   for metric, label in LAYER_ROWS if f"{metric}_median" in frame]
        out.append({"layer": layer, "head": [KIND_LABELS[kind] for _, kind in cols],
                    "counts": [(index.loc[c, "n_neurons"], index.loc[c, "n_excluded"])
                               for c in cols], "metrics": metrics})
    return out


# Calibration columns in the order shown: (column, label, kind); `interval` columns have _lo and
# _hi. Other pass rate (pass_*, *_pass) and p-value (*_p) columns the criteria table gains are
# shown after these, so a new null or control is never dropped from the page.
CALIBRATION = [
    ("pass_neuron", "Neurons pass [95% CI]", "interval"),
    ("null_rate", "Realised null rate", "pct"),
    ("pass_shuffled", "Shuffled pass", "pct"),
    ("pass_surrogate", "Surrogate pass", "pct"),
    ("pass_random_direction", "Random direction pass", "pct"),
    ("pass_geometry", "Neurons pass geometry test", "pct"),
    ("smooth_pass", "Linear read-outs pass it", "pct"),
    ("geometry_p", "p (vs geometry null)", "p"),
    ("smooth_p", "p (vs read-outs)", "p"),
]
# shown otherwise (the miscalibrated mark, the claims table) or not a calibration number
HIDDEN = {"noise_excess_p", "calibration_p", "exists_p"}


def calibration_columns(crit: pd.DataFrame) -> list[tuple[str, str, str]]:
    """The calibration table's columns: the known ones present, then any other pass rate or
    p-value column the criteria table has (e.g. a new control kind or null)."""
    known = [c for c in CALIBRATION if c[0] in crit]
    names = {c[0] for c in CALIBRATION} | HIDDEN
    extra = [(c, c.removeprefix("pass_").removesuffix("_pass").replace("_", " ") + " pass",
              "pct") for c in crit.columns if c.startswith("pass_") or c.endswith("_pass")
             if c not in names and not c.endswith(("_lo", "_hi"))]
    extra += [(c, "p (" + c.removesuffix("_p").replace("_", " ") + ")", "p")
              for c in crit.columns if c.endswith("_p") and c not in names]
    return known + extra


def _cell(row: dict, col: str, kind: str) -> tuple[str, str | None]:
    """(value, interval or None) of one calibration cell, formatted."""
    if kind == "interval":
        return pct(row.get(col)), f"[{pct(row.get(col + '_lo'))}, {pct(row.get(col + '_hi'))}]"
    return (pct(row.get(col)) if kind == "pct" else fmt_p(row.get(col))), None


def _miscalibrated(row: dict) -> bool:
    """The criteria table's own flag, else shuffled controls passing beyond binomial error."""
    if "miscalibrated" in row:
        return bool(row["miscalibrated"])
    p = finite(row.get("noise_excess_p"))
    return p is not None and p < 0.001


def calibration(data: ReportData) -> list[dict]:
    """Per layer: each criterion's pass rates on neurons and controls, one table per layer so
    that it fits the page's width."""
    crit = data.criteria
    if "role" in crit:  # effect statements do not vote and have no pass rates
        crit = crit[crit["role"] == "test"]
    if crit.empty:
        return []
    columns = calibration_columns(crit)
    tables = []
    for layer, group in crit.sort_values(["claim", "criterion"]).groupby("layer", sort=True):
        rows = []
        for c in group.to_dict("records"):
            rows.append({"criterion": c["criterion"], "name": c.get("name", ""),
                         "n": c.get("n_neuron"), "miscalibrated": _miscalibrated(c),
                         "identifiable": bool(c.get("identifiable", True)),
                         "cells": [_cell(c, col, kind) for col, _, kind in columns]})
        tables.append({"layer": int(layer), "rows": rows})
    return [{"head": [label for _, label, _ in columns], **t} for t in tables]


def results(data: ReportData) -> dict:
    """The calibration, contrasts and layers tables."""
    return {"alpha": float(data.config["analysis"]["alpha"]), "calibration": calibration(data),
            "contrasts": data.contrasts.to_dict("records"), "layers": layers_table(data),
            "structure": cluster_structure(data), "resolution": RESOLUTION}


def cluster_structure(data: ReportData) -> list[dict]:
    """Per layer: how many real neurons' core tokens have cluster structure at all, and the
    same share for random-direction pseudo-neurons."""
    frame = data.layers
    if frame.empty or "cluster_structure_frac" not in frame:
        return []
    rows = []
    for layer, group in frame.groupby("layer", sort=True):
        by_kind = group.set_index("kind")
        if "neuron" not in by_kind.index or not by_kind.loc["neuron", "n_structure"]:
            continue
        rows.append({"layer": int(layer),
                     "share": by_kind.loc["neuron", "cluster_structure_frac"],
                     "n": int(by_kind.loc["neuron", "n_structure"]),
                     "random": (by_kind.loc["random_direction", "cluster_structure_frac"]
                                if "random_direction" in by_kind.index else None)})
    return rows


def provenance(data: ReportData) -> dict:
    x = data.extraction
    meta = next(iter(data.table_provenance.values()), {}) if data.table_provenance else {}
    model = data.config["model"]

    def code(value) -> tuple[str | None, bool]:  # (text or None for '–', monospaced)
        return (str(value), True) if value not in (None, "") else (None, False)

    token_count = x.get("token_count")
    items = [
        ("model", *code(x.get("model_id") or meta.get("model_id") or model.get("id"))),
        ("model revision", *code(x.get("model_revision") or model.get("revision"))),
        ("weights (hash)", *code(x.get("weights") or meta.get("weights"))),
        *([("weights origin", str(x["weights_origin"]), False)] if x.get("weights_origin")
          else []),
        ("architecture", *code(x.get("architecture"))),
        ("tokenizer", *code(x.get("tokenizer"))),
        ("compute dtype / device", *code(f"{x.get('compute_dtype', '?')} / "
                                         f"{x.get('device', '?')}" if x else "")),
        ("corpus (hash)", *code(x.get("corpus_hash") or meta.get("corpus_hash"))),
        ("tokens processed", fmt(token_count) if token_count is not None else None, False),
        ("config hash (whole config)", *code(data.config_hash)),
        ("analysis config hash (tables)", *code(meta.get("config_hash"))),
    ]
    versions = x.get("versions") or meta.get("versions") or {}
    if isinstance(versions, str):
        versions = {"versions": versions}
    times = data.stage_times
    has_times = times is not None and len(times) > 0
    return {
        "items": items,
        "versions": [(k, *code(v)) for k, v in sorted(versions.items())],
        "stages": times.to_dict("records") if has_times else None,
        "total": (duration(float(pd.to_numeric(times["wall_s"], errors="coerce").sum()))
                  if has_times else None),
        "config_yaml": settings.as_yaml(data.config),
    }


OPENAI_ROWS = [
    ("n_compared", "neurons compared", fmt),
    ("n_found", "neurons with an OpenAI file", fmt),
    ("overlap_frac_mean", "mean overlap (share of the top tokens shared)", pct),
    ("overlap_frac_median", "median overlap", pct),
    ("jaccard_mean", "mean Jaccard index", fmt),
    ("overlap_norm_frac_mean", "mean overlap, ignoring whitespace and case", pct),
]


def openai(data: ReportData) -> dict:
    """The per-layer summary of the OpenAI related-tokens comparison."""
    frame = data.openai
    has = frame is not None and len(frame) > 0
    summary = openai_by_layer(frame) if has else None
    top_n = int(frame["top_n"].iloc[0]) if has and "top_n" in frame else None
    return {
        "source": data.openai_meta.get("openai_directory"),
        "top": f"top {top_n:,}" if top_n else "top",
        "layers": [int(x) for x in summary["layer"]] if has else [],
        "rows": ([(label, [f(v) for v in summary[col]]) for col, label, f in OPENAI_ROWS]
                 if has else []),
    }


def labels(data: ReportData) -> dict | None:
    """The labelling section: per layer, the share of labelled neurons whose cluster labels
    name distinct categories, and which labeller and prompts named them."""
    if data.label_layers is None:
        return None
    frame = data.label_layers
    return {"labeller": data.labels_meta.get("labeller", ""),
            "prompts": data.labels_meta.get("prompts", ""),
            "rows": [{"layer": int(r.layer), "labelled": int(r.n_labelled),
                      "judged": int(r.n_judged), "distinct": int(r.n_distinct),
                      "share": pct(r.distinct_share)} for r in frame.itertuples()]}


def categories(data: ReportData) -> dict | None:
    """The prompt-based categories section: the labeller's agreement with WordNet on the
    tokens both cover, what it makes of the tokens WordNet lacks, and the claims re-judged with
    its categories as the proxy beside the base variant's."""
    from ..labels.categories import validity

    if data.categories is None:
        return None
    check = validity(data.categories)
    claims = []
    if data.categories_claims is not None:
        base = data.claims.set_index(["claim", "layer"])
        for row in data.categories_claims.itertuples():
            key = (row.claim, row.layer)
            claims.append({"claim": int(row.claim), "layer": int(row.layer),
                           "base_exists": base.loc[key, "verdict_exists"] if key in base.index else "–",
                           "base_beyond": (base.loc[key, "verdict_beyond_geometry"]
                                           if key in base.index else "–"),
                           "exists": row.verdict_exists, "beyond": row.verdict_beyond_geometry})
    return {**check, "labeller": data.categories_meta.get("labeller", ""),
            "prompts": data.categories_meta.get("prompts", ""),
            "ami": f"{check['ami_wordnet']:.3f}" if np.isfinite(check["ami_wordnet"]) else "–",
            "missed_share": pct(check["n_missed"] / check["n_tokens"]) if check["n_tokens"] else "–",
            "missed": [(name, pct(share)) for name, share in check["missed_categories"][:8]],
            "variant": data.categories_variant, "claims": claims}


def csv_tables(data: ReportData) -> dict[str, pd.DataFrame | None]:
    """The tables a page offers as CSV downloads, by file name."""
    return {"claims": data.claims, "criteria": data.criteria, "contrasts": data.contrasts,
            "layers": data.layers, "neurons": data.neurons, "controls": data.controls,
            "stage_times": data.stage_times if len(data.stage_times) else None,
            "openai_overlap": data.openai, "ablation_layers": data.ablation_layers,
            "labels": data.labels, "label_layers": data.label_layers,
            "categories": data.categories}
