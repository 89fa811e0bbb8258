"""The neuron browser's data: every neuron, in small script files the page loads on demand.

A page opened from disk cannot `fetch()` a file:// URL, but it can add a `<script src>` tag, so
each block of `NEURONS_PER_FILE` neurons of a layer is a JS file that hands its data to the
page (`intraneuronBlock({...})`), and each layer has a token index file for search
(`intraneuronIndex({...})`). Opening one neuron reads one block file, whatever the model's size.
The page itself only carries the manifest (which file holds which neurons) and the suggested
neurons: examples, the strongest half of `report.browser_neurons` and a sample seeded by
`analysis.seed`. Strings (tokens and contexts) are interned per file because the same token
and, at early layers, the same maximally activating context recur across neurons; floats are
rounded to 4 significant digits.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from .data import ReportData, strongest

# Per-neuron metrics shown next to a neuron, with the label the page uses.
METRICS = [
    ("n_clusters", "clusters"),
    ("silhouette", "silhouette (cosine)"),
    ("top_coarse_homogeneity", "top segment homogeneity"),
    ("top_coarse_z", "top segment homogeneity z"),
    ("top_coarse_q", "top segment q (FDR)"),
    ("top_fine_z", "top fine segment homogeneity z"),
    ("coarse_trend", "homogeneity slope (coarse)"),
    ("top_coarse_homogeneity_dc", "top segment homogeneity, typicality removed"),
    ("surrogate_r2", "linear read-out R² (leave-one-out)"),
    ("ami_coarse", "AMI(segments, clusters)"),
    ("ami_coarse_z", "AMI z"),
    ("runs", "runs along the ranking"),
    ("runs_z", "runs z"),
    ("interleaving", "interleaving index"),
    ("kw_epsilon2", "Kruskal-Wallis ε²"),
    ("kw_perm_q", "Kruskal-Wallis q (FDR)"),
    ("distinct_rho", "ρ(cluster mean rank, distinctness z)"),
    ("tied_share", "share of tied core tokens"),
]

CONTEXT_CHARS = 60  # characters kept on each side of a token's context (bounds the file sizes)
# Neurons per data file: opening a neuron loads one file of about this many neurons (about
# 15 kB each with 100 core tokens), so the wait stays well under a second on a laptop while
# GPT-2 XL's 6,400 neurons per layer need only 50 files.
NEURONS_PER_FILE = 128
PICKS_PER_LAYER = 10  # suggested neurons listed per layer above the browser


@dataclass
class Selection:
    """Embedded neurons of one layer, in display order, and why each is there."""

    layer: int
    total: int
    neurons: list[tuple[int, str]]  # (neuron, "example" | "strongest" | "sample" | "all")


def select(data: ReportData, examples: dict[int, list[int]]) -> list[Selection]:
    budget = data.config["report"]["browser_neurons"]
    seed = int(data.config["analysis"]["seed"])
    out = []
    for layer in data.layer_ids:
        every = data.neurons[data.neurons["layer"] == layer] if len(data.neurons) else (
            pd.DataFrame(columns=["neuron"]))
        ids = sorted(int(x) for x in every["neuron"])
        if budget is None or budget >= len(ids):
            out.append(Selection(layer, len(ids), [(x, "all") for x in ids]))
            continue
        chosen: list[tuple[int, str]] = [(x, "example") for x in examples.get(layer, [])]
        chosen = chosen[: int(budget)]
        taken = {x for x, _ in chosen}
        n_strong = max(int(budget) // 2 - len(chosen), 0)
        for x in strongest(data.analyzed(layer), n_strong, exclude=taken):
            chosen.append((x, "strongest"))
            taken.add(x)
        rest = np.array([x for x in ids if x not in taken], dtype=np.int64)
        n_sample = min(max(int(budget) - len(chosen), 0), rest.size)
        rng = np.random.default_rng([seed, int(layer)])
        sample = np.sort(rng.choice(rest, size=n_sample, replace=False)) if n_sample else []
        chosen += [(int(x), "sample") for x in sample]
        out.append(Selection(layer, len(ids), chosen))
    return out


def round4(values) -> list:
    """JSON-safe numbers: 4 significant digits, None for NaN or missing. Rounded a digit count
    at a time over the whole array: a layer of GPT-2 XL has 640,000 core-token rows, and
    rounding each number on its own took a third of the report's time."""
    x = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)
    ok = np.isfinite(x)
    nonzero = ok & (x != 0)
    digits = np.full(x.shape, 3)
    digits[nonzero] -= np.floor(np.log10(np.abs(x[nonzero]))).astype(int)
    rounded = x.copy()
    for d in np.unique(digits[ok]):
        pick = ok & (digits == d)
        rounded[pick] = np.round(x[pick], d)
    return [None if not good else int(v) if v.is_integer() and abs(v) < 2**53 else v
            for v, good in zip(rounded.tolist(), ok.tolist(), strict=True)]


def _text(x) -> str:
    return "" if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)) else str(x)


def _clip_left(x) -> str:
    text = _text(x)
    return text if len(text) <= CONTEXT_CHARS else "…" + text[-CONTEXT_CHARS:]


def _clip_right(x) -> str:
    text = _text(x)
    return text if len(text) <= CONTEXT_CHARS else text[:CONTEXT_CHARS] + "…"


class _Strings:
    """An interned string table: each distinct text once, referenced by its index."""

    def __init__(self):
        self.items: list[str] = []
        self.index: dict[str, int] = {}

    def __call__(self, text) -> int:
        text = _text(text)
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.items)
            self.items.append(text)
        return i


TOKEN_COLUMNS = {"mean_activation": "act", "count": "cnt", "cluster": "cl", "segment": "seg",
                 "fine_segment": "fine"}


def layer_tokens(data: ReportData, layer: int) -> pd.DataFrame:
    """One layer's core-token rows, sorted by neuron and rank."""
    table = data.tokens
    if table.num_rows == 0:
        return pd.DataFrame(columns=["neuron", "rank", "token"])
    part = table.filter(pc.equal(table.column("layer"), layer)).to_pandas()
    return part.sort_values(["neuron", "rank"], kind="stable").reset_index(drop=True)


def _token_lists(tk: pd.DataFrame, strings: _Strings) -> dict[str, list]:
    """Per-column lists of one block's token rows (numbers rounded, strings interned)."""
    # text columns as Python lists first: iterating an Arrow-backed column is 5x slower
    out = {"tok": [strings(t) for t in tk["token"].tolist()]}
    for col, key in TOKEN_COLUMNS.items():
        out[key] = round4(tk[col]) if col in tk else [None] * len(tk)
    left = tk["context_left"].tolist() if "context_left" in tk else [""] * len(tk)
    right = tk["context_right"].tolist() if "context_right" in tk else [""] * len(tk)
    out["ctx"] = [[strings(_clip_left(a)), strings(_clip_right(b))]
                  for a, b in zip(left, right, strict=True)]
    return out


def _labels(frame: pd.DataFrame | None, layer: int) -> dict[int, dict]:
    """Per neuron of `layer`: {"cl": {cluster: label}, "seg": {segment: label}}."""
    if frame is None or not len(frame):
        return {}
    out: dict[int, dict] = {}
    for r in frame[frame["layer"] == layer].itertuples():
        unit = "cl" if r.unit == "cluster" else "seg"
        out.setdefault(int(r.neuron), {"cl": {}, "seg": {}})[unit][str(int(r.index))] = r.label
    return out


def _block(layer: int, ids: list[int], tk: pd.DataFrame, rows: pd.DataFrame,
           clusters: dict, metrics: list[str], labels: dict | None = None) -> dict:
    """The data file of one block of neurons: each neuron's metrics, clusters and core tokens."""
    strings = _Strings()
    lists = _token_lists(tk, strings)
    bounds = np.searchsorted(tk["neuron"].to_numpy(np.int64), [*ids, ids[-1] + 1]) if len(
        tk) else np.zeros(len(ids) + 1, dtype=np.int64)
    values = rows.reindex(ids)
    matrix = [round4(values[c]) for c in metrics]
    excluded = ([_text(x) for x in values["exclusion_reason"]] if "exclusion_reason" in values
                else [""] * len(ids))
    neurons = []
    for j, neuron in enumerate(ids):
        a, b = int(bounds[j]), int(bounds[j + 1])
        entry = {"layer": layer, "neuron": neuron, "excluded": excluded[j],
                 "m": [col[j] for col in matrix]}
        entry.update({key: lst[a:b] for key, lst in lists.items()})
        cl = clusters.get(neuron)
        entry["clusters"] = [] if cl is None else [
            [int(c), str(name), int(size), act] for c, name, size, act in zip(
                cl["cluster"], cl["name"], cl["size"], round4(cl["mean_activation"]),
                strict=True)]
        if neuron in (labels or {}):
            entry["labels"] = labels[neuron]
        neurons.append(entry)
    return {"layer": layer, "strings": strings.items, "neurons": neurons}


def _index(layer: int, tk: pd.DataFrame) -> dict:
    """A layer's token index: each distinct core-token text with its (neuron, rank) pairs."""
    hits: dict[str, list[int]] = {}
    for token, neuron, rank in zip(tk["token"].map(_text), tk["neuron"].astype(int),
                                   tk["rank"].astype(int), strict=True):
        hits.setdefault(token, []).extend((neuron, rank))
    return {"layer": layer, "tokens": list(hits), "hits": list(hits.values())}


def _write_js(path: Path, callback: str, obj: dict) -> int:
    """A data file: one call of the page's `callback` with `obj`; returns its size in bytes."""
    text = f"{callback}({script_json(obj)});\n"
    path.write_text(text, encoding="utf-8")
    return len(text.encode())


def write_data(data: ReportData, out: Path, href: str) -> dict:
    """Write every neuron's block files and the token index of each layer into `out`; return
    the manifest the page embeds (`href` is `out` relative to the page)."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.js"):  # the directory is this rule's output: no foreign files
        stale.unlink()
    metrics = [(c, label) for c, label in METRICS if c in data.neurons]
    manifest = {"layers": [], "blocks": {}, "index": {}, "ids": {}, "bytes": 0}
    for layer in data.layer_ids:
        rows = data.neurons[data.neurons["layer"] == layer].set_index("neuron")
        ids = sorted(int(x) for x in rows.index)
        tk = layer_tokens(data, layer)
        clusters = (dict(list(data.clusters[data.clusters["layer"] == layer]
                              .sort_values(["neuron", "cluster"]).groupby("neuron")))
                    if len(data.clusters) else {})
        labels = _labels(data.labels, layer)
        blocks = []
        for start in range(0, len(ids), NEURONS_PER_FILE):
            part = ids[start:start + NEURONS_PER_FILE]
            name = f"L{layer}_N{part[0]}-{part[-1]}.js"
            lo, hi = np.searchsorted(tk["neuron"].to_numpy(np.int64), [part[0], part[-1] + 1]) \
                if len(tk) else (0, 0)
            block = _block(layer, part, tk.iloc[lo:hi], rows, clusters, [c for c, _ in metrics],
                           labels)
            manifest["bytes"] += _write_js(out / name, "intraneuronBlock", block)
            blocks.append([part[0], part[-1], f"{href}/{name}"])
        name = f"L{layer}_index.js"
        manifest["bytes"] += _write_js(out / name, "intraneuronIndex", _index(layer, tk))
        manifest["layers"].append(layer)
        manifest["blocks"][str(layer)] = blocks
        manifest["index"][str(layer)] = f"{href}/{name}"
        manifest["ids"][str(layer)] = ids
    manifest["metrics"] = [[c, label] for c, label in metrics]
    return manifest


def relative_href(target: Path, page: Path) -> str:
    """`target` as a URL path relative to the page's folder."""
    return Path(os.path.relpath(target, page.parent)).as_posix()


def wordpiece(data: ReportData) -> bool:
    """Whether the tokens are WordPiece pieces ('##' continues a word; other pieces are words
    that the text separates by spaces), so that contexts are joined as text, not glued."""
    if data.tokens.num_rows == 0:
        return False
    tokens = pd.Series(data.tokens.column("token").to_pylist(), dtype=object).map(_text)
    return bool(tokens.str.startswith("##").any() and not tokens.str.startswith(" ").any())


def picks(selections: list[Selection]) -> dict[str, list[list]]:
    """Per layer: the suggested neurons (examples, then the strongest effects) with why."""
    out = {}
    for sel in selections:
        shown = [[n, why] for n, why in sel.neurons if why in ("example", "strongest")]
        out[str(sel.layer)] = (shown or [[n, why] for n, why in sel.neurons])[:PICKS_PER_LAYER]
    return out


def script_json(obj: dict) -> str:
    """JSON that is safe inside <script type="application/json">: no '<', '>' or '&' literally,
    so no token text (e.g. '</script>') can close the tag; NaN never appears (see _num)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
