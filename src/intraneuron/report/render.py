"""HTML fragments of the report. Every value from a table or config passes through `escape`."""

from __future__ import annotations

import math
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


LEVELS = (("verdict_exists", "exists"), ("verdict_beyond_geometry", "beyond geometry"))
KIND_LABELS = {"neuron": "neurons", "shuffled": "shuffled (noise)",
               "surrogate": "linear surrogate", "random_direction": "random direction"}


def _claim_groups(claims: pd.DataFrame) -> list[tuple[object, pd.DataFrame]]:
    if claims.empty:
        return []
    order = claims.sort_values(["claim", "layer"], kind="stable")
    return list(order.groupby("claim", sort=False))


def headline(data: ReportData) -> str:
    """The claims with their two verdicts per layer, and what was left out."""
    model = escape(str(data.extraction.get("model_id") or (data.config.get("model") or {})
                       .get("id", "the model")))
    n = data.neurons.groupby("layer").size() if len(data.neurons) else pd.Series(dtype=int)
    layers = ", ".join(f"layer {int(k)} ({v:,} neurons)" for k, v in n.items()) or "no layers"
    k = (data.config.get("core_tokens") or {}).get("k", "")
    items = []
    for claim, grp in _claim_groups(data.claims):
        verdicts = " ".join(
            f'<span class="layer-verdict">layer {int(r["layer"])}: '
            + " ".join(f"{label} {badge(r[col])}" for col, label in LEVELS) + "</span>"
            for _, r in grp.iterrows())
        items.append(f'<li><span class="claim-id">Claim {escape(str(claim))}</span> '
                     f'{escape(str(grp["claim_text"].iloc[0]))}'
                     f'<div class="verdicts">{verdicts}</div></li>')
    claims = (f'<ol class="headline-claims">{"".join(items)}</ol>' if items
              else "<p>No claims were evaluated.</p>")
    return (f'<p class="lead">The {escape(str(k))} core tokens of every MLP neuron of '
            f"<code>{model}</code>, {escape(layers)}: are the neuron's activation levels "
            f"(bottom-up segments of its ranking) related to the categories of its tokens "
            f"(top-down clusters)? Each claim is judged at two levels: <em>exists</em> (real "
            f"neurons pass its criteria more often than chance) and <em>beyond geometry</em> "
            f"(and more often than linear read-outs of the embedding space, which share its "
            f"geometry but learned nothing).</p>{claims}{excluded_note(data)}")


def excluded_note(data: ReportData) -> str:
    """How many real neurons were left out of the claims, and why."""
    out = data.excluded()
    if out.empty:
        return '<p class="note" id="excluded-note">No neuron was excluded.</p>'
    counts = out.groupby("layer").size()
    per_layer = ", ".join(f"layer {int(k)}: {v:,}" for k, v in counts.items())
    reasons = out["exclusion_reason"].str.split(":").str[0].value_counts()
    why = "; ".join(f"{escape(str(r))} ({c:,})" for r, c in reasons.items())
    return (f'<p class="note" id="excluded-note">Excluded from every claim ({per_layer}): '
            f"{why}. They stay in the tables and the neuron browser.</p>")


def _interval(value, lo, hi, f=None) -> str:
    f = f or pct
    return f'{f(value)} <span class="ci">[{f(lo)}, {f(hi)}]</span>'


def _criterion_cells(r: pd.Series) -> str:
    mark = {True: '<span class="held-yes">✓</span>', False: '<span class="held-no">✗</span>'}
    if not r["testable"]:
        return f'<td colspan="2">not testable: {escape(str(r["reason"]))}</td>'
    return (f'<td class="num">{mark[bool(r["exists"])]}</td>'
            f'<td class="num">{mark[bool(r["beyond_geometry"])]}</td>')


def claims_table(data: ReportData) -> str:
    """Per claim: its criteria per layer with both levels, then the two verdicts."""
    groups = _claim_groups(data.claims)
    if not groups:
        return "<p>The claims table is empty.</p>"
    crit = data.criteria
    rows = []
    for claim, grp in groups:
        rows.append(f'<tr class="claim-row"><td colspan="6"><strong>Claim {escape(str(claim))}'
                    f'</strong> {escape(str(grp["claim_text"].iloc[0]))}</td></tr>')
        for _, r in grp.iterrows():
            mine = crit[(crit["claim"] == claim) & (crit["layer"] == r["layer"])]
            for i, (_, c) in enumerate(mine.iterrows()):
                verdicts = ""
                if i == 0:
                    verdicts = (f'<td rowspan="{len(mine)}">'
                                + "<br>".join(f"{label}: {badge(r[col])}" for col, label in LEVELS)
                                + "</td>")
                rows.append(
                    f'<tr class="layer-row"><td class="num">{int(r["layer"])}</td>'
                    f'<td><strong>{escape(c["criterion"])}</strong> {escape(c["name"])}'
                    f'<div class="rule">{escape(c["rule"])}</div></td>'
                    f'<td class="num">{_interval(c["pass_neuron"], c["pass_neuron_lo"], c["pass_neuron_hi"])}'
                    f"</td>{_criterion_cells(c)}{verdicts}</tr>")
    head = ("<tr><th class=num>Layer</th><th>Criterion (per-neuron rule)</th>"
            "<th class=num>Neurons passing [95% CI]</th><th class=num>Exists</th>"
            "<th class=num>Beyond geometry</th><th>Verdicts</th></tr>")
    rule = escape(str(data.claims["rule"].iloc[0]))
    return (f'<p class="rule"><strong>Rule:</strong> {rule}</p><div class="table-wrap">'
            f'<table class="claims" id="claims-table"><thead>{head}'
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>")


def calibration_table(data: ReportData) -> str:
    """Every criterion's pass rate on real neurons and on each control kind, in this run."""
    crit = data.criteria
    if crit.empty:
        return "<p>The criteria table is empty.</p>"
    alpha = float((data.config.get("analysis") or {}).get("alpha", 0.05))
    rows = []
    for _, c in crit.sort_values(["claim", "criterion", "layer"]).iterrows():
        noisy = np.isfinite(c["noise_excess_p"]) and c["noise_excess_p"] < 0.001
        flag = (' <span class="held-no" title="shuffled controls pass more often than alpha '
                'beyond binomial error">miscalibrated</span>' if noisy else "")
        rows.append(
            f'<tr><td><strong>{escape(c["criterion"])}</strong> {escape(c["name"])}</td>'
            f'<td class="num">{int(c["layer"])}</td>'
            f'<td class="num">{_interval(c["pass_neuron"], c["pass_neuron_lo"], c["pass_neuron_hi"])}'
            f' <span class="n">n = {fmt(c["n_neuron"])}</span></td>'
            f'<td class="num">{pct(c["pass_shuffled"])}{flag}</td>'
            f'<td class="num">{pct(c["pass_surrogate"])}</td>'
            f'<td class="num">{pct(c["pass_random_direction"])}</td>'
            f'<td class="num">{_interval(c["vs_surrogate"], c["vs_surrogate_lo"], c["vs_surrogate_hi"])}'
            f'</td><td class="num">{fmt_p(c["vs_surrogate_p"])}</td>'
            f'<td class="num">{fmt_p(c["vs_random_p"])}</td></tr>')
    head = ("<tr><th>Criterion</th><th class=num>Layer</th><th class=num>Neurons pass "
            "[95% CI]</th><th class=num>Shuffled pass</th><th class=num>Surrogate pass</th>"
            "<th class=num>Random direction pass</th><th class=num>Neurons − surrogates "
            "[95% CI]</th><th class=num>p (vs surrogates)</th><th class=num>p (vs random "
            "directions)</th></tr>")
    return (f'<p class="note">Calibration, measured in this run: a per-neuron test at alpha = '
            f"{alpha} should pass on about {pct(alpha)} of shuffled controls; a criterion whose "
            f"shuffled pass rate exceeds that beyond binomial error (p &lt; 0.001) is marked "
            f"miscalibrated. The geometry controls show what linear read-outs of the same "
            f"embedding space achieve.</p><div class=\"table-wrap\"><table class=\"layers\" "
            f'id="calibration-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody>'
            f"</table></div>")


def contrasts_table(data: ReportData) -> str:
    """Each criterion's pass rate, later layers minus the first, with its interval."""
    frame = data.contrasts
    if frame.empty:
        return "<p>Only one layer: no layer contrasts.</p>"
    rows = "".join(
        f'<tr><td><strong>{escape(r["criterion"])}</strong> {escape(r["name"])}</td>'
        f'<td class="num">layer {int(r["layer_b"])} − layer {int(r["layer_a"])}</td>'
        f'<td class="num">{_interval(r["difference"], r["lo"], r["hi"])}</td></tr>'
        for _, r in frame.iterrows())
    return (f'<div class="table-wrap"><table class="layers" id="contrasts-table"><thead><tr>'
            f"<th>Criterion</th><th class=num>Contrast</th><th class=num>Difference in pass "
            f"rate [95% CI]</th></tr></thead><tbody>{rows}</tbody></table></div>")


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
]


def layers_table(data: ReportData) -> str:
    """Medians with bootstrap intervals, real neurons beside each control kind."""
    frame = data.layers
    if frame.empty:
        return "<p>The layer summary is empty.</p>"
    kinds = [k for k in KIND_LABELS if k in set(frame["kind"])]
    cols = [(int(layer), kind) for layer in sorted(frame["layer"].unique()) for kind in kinds]
    index = frame.set_index(["layer", "kind"])
    head = "".join(f'<th class="num">Layer {layer}<br>{escape(KIND_LABELS[kind])}</th>'
                   for layer, kind in cols)
    rows = []
    for label, values in [("neurons (excluded)", [
            f'{fmt(index.loc[c, "n_neurons"])} ({fmt(index.loc[c, "n_excluded"])})'
            for c in cols])]:
        rows.append(f"<tr><th scope=row>{escape(label)}</th>"
                    + "".join(f'<td class="num">{v}</td>' for v in values) + "</tr>")
    for metric, label in LAYER_ROWS:
        if f"{metric}_median" not in frame:
            continue
        cells = "".join(
            f'<td class="num">{_interval(index.loc[c, f"{metric}_median"], index.loc[c, f"{metric}_lo"], index.loc[c, f"{metric}_hi"], fmt)}</td>'
            for c in cols)
        rows.append(f"<tr><th scope=row>{escape(label)}</th>{cells}</tr>")
    return (f'<div class="table-wrap"><table class="layers" id="layers-table"><thead><tr>'
            f"<th>Median over neurons [bootstrap 95% CI]</th>{head}</tr></thead><tbody>"
            f"{''.join(rows)}</tbody></table></div>")


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
