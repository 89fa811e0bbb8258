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
import yaml

from .data import ReportData, openai_by_layer


def fmt(x, digits: int = 3) -> str:
    """A number for a table cell: '–' for missing, thousands separators, `digits` significant."""
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
    if f.is_integer() and abs(f) < 1e15:
        return f"{int(f):,}"
    return f"{f:.{digits}g}"


def fmt_p(p) -> str:
    try:
        f = float(p)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(f):
        return "–"
    return f"{f:.2g}" if f >= 1e-4 else f"{f:.1e}"


def pct(x) -> str:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return "–"
    return "–" if not math.isfinite(f) else f"{100 * f:.1f}%"


def duration(seconds) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(s):
        return "–"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def verdict_class(verdict) -> str:
    """CSS class of a verdict: negative wording is checked first ('not supported')."""
    v = str(verdict).strip().lower()
    if any(w in v for w in ("not", "reject", "contradict", "fail")) or v in ("no", "false"):
        return "verdict-no"
    if v.startswith("support") or v in ("yes", "true", "pass", "holds"):
        return "verdict-yes"
    return "verdict-mixed"


FILTERS = {"fmt": fmt, "fmt_p": fmt_p, "pct": pct, "duration": duration,
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


def layers_table(data: ReportData) -> dict | None:
    """Medians with bootstrap intervals, real neurons beside each control kind."""
    frame = data.layers
    if frame.empty:
        return None
    kinds = [k for k in KIND_LABELS if k in set(frame["kind"])]
    cols = [(int(layer), kind) for layer in sorted(frame["layer"].unique()) for kind in kinds]
    index = frame.set_index(["layer", "kind"])
    metrics = [(label, [tuple(index.loc[c, f"{metric}_{s}"] for s in ("median", "lo", "hi"))
                        for c in cols])
               for metric, label in LAYER_ROWS if f"{metric}_median" in frame]
    return {"head": [(layer, KIND_LABELS[kind]) for layer, kind in cols],
            "counts": [(index.loc[c, "n_neurons"], index.loc[c, "n_excluded"]) for c in cols],
            "metrics": metrics}


def results(data: ReportData) -> dict:
    """The calibration, contrasts and layers tables."""
    crit = data.criteria
    calibration = []
    if not crit.empty:
        tests = crit[crit["role"] == "test"]
        calibration = tests.sort_values(["claim", "criterion", "layer"]).to_dict("records")
    return {"alpha": float(data.config["analysis"]["alpha"]), "calibration": calibration,
            "contrasts": data.contrasts.to_dict("records"), "layers": layers_table(data),
            "structure": cluster_structure(data)}


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
        "config_yaml": yaml.safe_dump(data.config, sort_keys=False, allow_unicode=True),
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
