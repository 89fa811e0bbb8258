"""HTML fragments of the report. Every value from a table or config passes through `escape`."""

from __future__ import annotations

import math
import re
from html import escape

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
        return escape(str(x))
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


def verdict_class(verdict) -> str:
    """CSS class of a verdict: negative wording is checked first ('not supported')."""
    v = str(verdict).strip().lower()
    if any(w in v for w in ("not", "reject", "contradict", "fail")) or v in ("no", "false"):
        return "verdict-no"
    if v.startswith("support") or v in ("yes", "true", "pass", "holds"):
        return "verdict-yes"
    return "verdict-mixed"


def badge(verdict) -> str:
    return f'<span class="verdict {verdict_class(verdict)}">{escape(str(verdict))}</span>'


def _claim_groups(claims: pd.DataFrame) -> list[tuple[object, pd.DataFrame]]:
    if claims.empty or "claim" not in claims:
        return []
    order = claims.sort_values(["claim", "layer"], kind="stable")
    return list(order.groupby("claim", sort=False))


def headline(data: ReportData) -> str:
    model = escape(str(data.extraction.get("model_id") or (data.config.get("model") or {})
                       .get("id", "the model")))
    n = data.neurons.groupby("layer").size() if len(data.neurons) else pd.Series(dtype=int)
    layers = ", ".join(f"layer {int(k)} ({v:,} neurons)" for k, v in n.items()) or "no layers"
    k = (data.config.get("core_tokens") or {}).get("k", "")
    items = []
    for claim, grp in _claim_groups(data.claims):
        text = grp["claim_text"].iloc[0] if "claim_text" in grp else ""
        verdicts = " ".join(
            f'<span class="layer-verdict">layer {int(r["layer"])}: {badge(r["verdict"])}</span>'
            for _, r in grp.iterrows())
        items.append(f'<li><span class="claim-id">Claim {escape(str(claim))}</span> '
                     f'{escape(str(text))}<div class="verdicts">{verdicts}</div></li>')
    claims = (f'<ol class="headline-claims">{"".join(items)}</ol>' if items
              else "<p>No claims were evaluated.</p>")
    return (f'<p class="lead">The {escape(str(k))} core tokens of every MLP neuron of '
            f"<code>{model}</code>, {escape(layers)}: are the neuron's activation levels "
            f"(bottom-up segments of its ranking) related to the categories of its tokens "
            f"(top-down clusters)? Verdicts per claim and layer:</p>{claims}")


CRITERION_START = re.compile(r"; (?=[A-Z][^;\[]*?: \[(?:holds|fails)\])")


def criteria_html(text) -> str:
    """The criteria column as one line per criterion, with held/failed marked in colour."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    parts = CRITERION_START.split(str(text))
    out = []
    for part in parts:
        item = escape(part)
        item = item.replace("[holds]", '<span class="held-yes">✓ holds</span>')
        item = item.replace("[fails]", '<span class="held-no">✗ fails</span>')
        out.append(f"<li>{item}</li>")
    return f'<ul class="criteria-list">{"".join(out)}</ul>'


def claims_table(data: ReportData) -> str:
    """One block per claim: a row with the claim and its rule, then one row per layer."""
    groups = _claim_groups(data.claims)
    if not groups:
        return "<p>The claims table is empty.</p>"
    null_col = "null_value" if "null_value" in data.claims else "null"
    rows = []
    for claim, grp in groups:
        text = escape(str(grp["claim_text"].iloc[0])) if "claim_text" in grp else ""
        rule = escape(str(grp["rule"].iloc[0])) if "rule" in grp else ""
        rows.append(f'<tr class="claim-row"><td colspan="7"><strong>Claim {escape(str(claim))}'
                    f'</strong> {text}<div class="rule"><strong>Rule:</strong> {rule}</div>'
                    f"</td></tr>")
        for _, r in grp.iterrows():
            held = ""
            if "n_criteria_held" in r and "n_criteria" in r:
                held = (f'<div class="held">{fmt(r["n_criteria_held"])} of '
                        f'{fmt(r["n_criteria"])} criteria hold</div>')
            cells = [
                f'<td class="num">{int(r["layer"])}</td>',
                f"<td>{escape(str(r.get('statistic', '')))}</td>",
                f'<td class="num">{fmt(r.get("value"))}</td>',
                f'<td class="num">{fmt(r.get(null_col))}</td>',
                f'<td class="num">{fmt_p(r.get("p"))}</td>',
                f"<td>{badge(r.get('verdict', ''))}{held}</td>",
                f'<td class="criteria">{criteria_html(r.get("criteria"))}</td>',
            ]
            rows.append(f'<tr class="layer-row">{"".join(cells)}</tr>')
    head = ("<tr><th class=num>Layer</th><th>Statistic</th><th class=num>Value</th>"
            "<th class=num>Null</th><th class=num>p</th><th>Verdict</th><th>Criteria</th></tr>")
    return (f'<div class="table-wrap"><table class="claims" id="claims-table"><thead>{head}'
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>")


# (column of layers.parquet, label, formatter)
LAYER_ROWS = [
    ("n_neurons", "neurons", fmt),
    ("n_analyzed", "analysed neurons (enough valid core tokens)", fmt),
    ("n_clusters_median", "median number of clusters", fmt),
    ("silhouette_median", "median silhouette of the chosen clustering", fmt),
    ("top_coarse_homogeneity_median", "median top-segment homogeneity (cosine)", fmt),
    ("mean_similarity_median", "median homogeneity of all core tokens (chance level)", fmt),
    ("top_coarse_z_median", "median top-segment homogeneity z", fmt),
    ("top_coarse_frac_q", "neurons whose top segment beats chance (q < α)", pct),
    ("top_fine_z_median", "median top fine-segment homogeneity z", fmt),
    ("top_fine_frac_q", "neurons whose top fine segment beats chance (q < α)", pct),
    ("coarse_top_is_max_frac", "neurons whose top segment is their most homogeneous", pct),
    ("fine_top_is_max_frac", "neurons whose top fine segment is their most homogeneous", pct),
    ("coarse_trend_median", "median trend r (homogeneity vs activation)", fmt),
    ("coarse_page_p", "Page trend test p (coarse segments)", fmt_p),
    ("ami_coarse_median", "median AMI(coarse segments, clusters)", fmt),
    ("ami_coarse_frac_q", "neurons with AMI above chance (q < α)", pct),
    ("runs_z_median", "median runs z", fmt),
    ("interleaving_median", "median interleaving index", fmt),
    ("range_overlap_frac_median", "median share of cluster pairs with overlapping ranges", pct),
    ("kw_epsilon2_median", "median Kruskal-Wallis ε²", fmt),
    ("kw_frac_q", "neurons whose clusters differ in activation (q < α)", pct),
    ("act_distinct_rho_median", "median ρ(cluster activation, distinctness)", fmt),
    ("cluster_act_distinct_rho", "pooled ρ(activation position, distinctness)", fmt),
]


def layers_table(data: ReportData) -> str:
    frame = data.layers
    if frame.empty:
        return "<p>The layer summary is empty.</p>"
    frame = frame.sort_values("layer").copy()
    if "n_analyzed" not in frame and "analyzed" in data.neurons:
        counts = data.neurons.groupby("layer")["analyzed"].sum()
        frame["n_analyzed"] = [int(counts.get(x, 0)) for x in frame["layer"]]
    head = "".join(f'<th class="num">Layer {int(x)}</th>' for x in frame["layer"])
    rows = []
    for col, label, f in LAYER_ROWS:
        if col not in frame:
            continue
        cells = "".join(f'<td class="num">{f(v)}</td>' for v in frame[col])
        rows.append(f"<tr><th scope=row>{escape(label)}</th>{cells}</tr>")
    return (f'<div class="table-wrap"><table class="layers" id="layers-table"><thead><tr>'
            f"<th>Metric</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def figure(uri: str, alt: str, caption: str, fig_id: str, width: int | None = None) -> str:
    """`width` in CSS pixels: the figure's size in inches at 96 px per inch, so text in every
    figure appears at the same size (CSS scales it down on narrow screens)."""
    size = f' width="{width}"' if width else ""
    return (f'<figure id="{escape(fig_id)}"><img src="{uri}" alt="{escape(alt)}"{size}>'
            f"<figcaption>{caption}</figcaption></figure>")


def _kv_table(items: list[tuple[str, str]], table_id: str) -> str:
    rows = "".join(f"<tr><th scope=row>{escape(k)}</th><td>{v}</td></tr>" for k, v in items)
    return f'<table class="kv" id="{table_id}"><tbody>{rows}</tbody></table>'


def provenance(data: ReportData) -> str:
    x = data.extraction
    meta = next(iter(data.table_provenance.values()), {}) if data.table_provenance else {}
    model = data.config.get("model") or {}

    def code(value) -> str:
        return f"<code>{escape(str(value))}</code>" if value not in (None, "") else "–"

    token_count = x.get("token_count")
    items = [
        ("model", code(x.get("model_id") or meta.get("model_id") or model.get("id"))),
        ("model revision", code(x.get("model_revision") or model.get("revision"))),
        ("weights (hash)", code(x.get("weights") or meta.get("weights"))),
        ("architecture", code(x.get("architecture"))),
        ("tokenizer", code(x.get("tokenizer"))),
        ("compute dtype / device", code(f"{x.get('compute_dtype', '?')} / {x.get('device', '?')}"
                                        if x else "")),
        ("corpus (hash)", code(x.get("corpus_hash") or meta.get("corpus_hash"))),
        ("tokens processed", fmt(token_count) if token_count is not None else "–"),
        ("config hash (whole config)", code(data.config_hash)),
        ("analysis config hash (tables)", code(meta.get("config_hash"))),
    ]
    versions = x.get("versions") or meta.get("versions") or {}
    if isinstance(versions, str):
        versions = {"versions": versions}
    version_rows = [(k, code(v)) for k, v in sorted(versions.items())]
    times = data.stage_times
    if times is not None and len(times):
        rows = "".join(
            f"<tr><td>{escape(str(r['rule']))}</td><td class=num>{fmt(r['jobs'])}</td>"
            f"<td class=num>{_duration(r['wall_s'])}</td><td class=num>{fmt(r['max_rss_mb'])}"
            f"</td></tr>" for _, r in times.iterrows())
        total = _duration(float(pd.to_numeric(times["wall_s"], errors="coerce").sum()))
        stage = (f'<table class="stages" id="stage-times"><thead><tr><th>Rule</th>'
                 f"<th class=num>Jobs</th><th class=num>Wall time (summed over jobs)</th>"
                 f"<th class=num>Peak memory (MB)</th></tr></thead><tbody>{rows}</tbody>"
                 f"<tfoot><tr><th>total</th><td></td><td class=num>{total}</td><td></td></tr>"
                 f"</tfoot></table>")
    else:
        stage = "<p>No benchmark files were found, so stage run times are not available.</p>"
    config_yaml = yaml.safe_dump(data.config, sort_keys=False, allow_unicode=True)
    return (f"<h3>Run</h3>{_kv_table(items, 'provenance-table')}"
            f"<h3>Package versions</h3>{_kv_table(version_rows, 'versions-table')}"
            f"<h3>Run time per stage</h3>{stage}"
            f"<h3>Configuration</h3><details open><summary>Full configuration (YAML, as "
            f"used)</summary><pre class=config>{escape(config_yaml)}</pre></details>")


def _duration(seconds) -> str:
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


OPENAI_ROWS = [
    ("n_compared", "neurons compared", fmt),
    ("n_found", "neurons with an OpenAI file", fmt),
    ("overlap_frac_mean", "mean overlap (share of the top tokens shared)", pct),
    ("overlap_frac_median", "median overlap", pct),
    ("jaccard_mean", "mean Jaccard index", fmt),
    ("overlap_norm_frac_mean", "mean overlap, ignoring whitespace and case", pct),
]


def openai_table(data: ReportData) -> str:
    """The per-layer summary of the OpenAI related-tokens comparison."""
    frame = data.openai
    if frame is None or frame.empty:
        return "<p>The OpenAI comparison table is empty.</p>"
    summary = openai_by_layer(frame)
    head = "".join(f'<th class="num">Layer {int(x)}</th>' for x in summary["layer"])
    rows = "".join(
        f"<tr><th scope=row>{escape(label)}</th>"
        + "".join(f'<td class="num">{f(v)}</td>' for v in summary[col]) + "</tr>"
        for col, label, f in OPENAI_ROWS)
    return (f'<div class="table-wrap"><table class="layers" id="openai-table"><thead><tr>'
            f"<th>Metric</th>{head}</tr></thead><tbody>{rows}</tbody></table></div>")
