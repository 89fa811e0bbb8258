"""Everything the report reads, loaded once: result tables, provenance and stage times.

The tokens table is the only large input (one row per core token of every neuron, with context
strings), so it stays an Arrow table and only the neurons the report shows are converted to
pandas (`tokens_for`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import h5io
from ..config import with_defaults
from ..tables import read_provenance

log = logging.getLogger("intraneuron")

TABLES = ("neurons", "layers", "claims", "criteria", "contrasts", "segments", "clusters")

# Per-neuron effect used to pick the "strongest" neurons (browser, examples): how much more
# categorically homogeneous the top coarse activation segment is than random segments of the
# same neuron's core tokens (z against the permutation null).
EFFECT = "top_coarse_z"


@dataclass
class ReportData:
    """The run's tables. `neurons`, `segments` and `clusters` hold real neurons only; their
    control rows (shuffled, surrogate, random_direction) are in `controls` and
    `control_segments`."""

    neurons: pd.DataFrame
    layers: pd.DataFrame
    claims: pd.DataFrame
    criteria: pd.DataFrame
    contrasts: pd.DataFrame
    segments: pd.DataFrame
    clusters: pd.DataFrame
    controls: pd.DataFrame
    control_segments: pd.DataFrame
    tokens: pa.Table
    config: dict
    config_hash: str
    extraction: dict = field(default_factory=dict)  # HDF5 attributes of the extraction
    table_provenance: dict = field(default_factory=dict)  # per table: its Parquet metadata
    stage_times: pd.DataFrame = field(default_factory=pd.DataFrame)
    # OpenAI related-tokens comparison (intraneuron.openai_compare); None when not configured
    openai: pd.DataFrame | None = None
    openai_meta: dict = field(default_factory=dict)  # its Parquet provenance
    # Ablation tables (intraneuron.ablation_stage); None when the run has none
    ablation: pd.DataFrame | None = None
    ablation_layers: pd.DataFrame | None = None
    # Prompt-based category labels (intraneuron.labels); None when the model is not labelled
    labels: pd.DataFrame | None = None
    label_layers: pd.DataFrame | None = None
    labels_meta: dict = field(default_factory=dict)  # labeller and prompts, from the Parquet
    # Prompt-based categories (analysis.proxy: llm) and the claims of the first variant using
    # them; None when no variant does
    categories: pd.DataFrame | None = None
    categories_meta: dict = field(default_factory=dict)
    categories_claims: pd.DataFrame | None = None
    categories_variant: str = ""  # that variant's name (its folder under variants/)

    @property
    def layer_ids(self) -> list[int]:
        found = set(self.neurons["layer"].astype(int)) if len(self.neurons) else set()
        return sorted(found or {int(x) for x in self.config["layers"]})

    def analyzed(self, layer: int | None = None) -> pd.DataFrame:
        """Real neurons that count for the claims (optionally of one layer): not excluded."""
        frame = self.neurons[~self.neurons["excluded"].astype(bool)]
        if layer is not None:
            frame = frame[frame["layer"] == layer]
        return frame

    def excluded(self) -> pd.DataFrame:
        """Real neurons left out of the claims, with their reason."""
        return self.neurons[self.neurons["excluded"].astype(bool)]

    def tokens_for(self, keys: set[tuple[int, int]]) -> pd.DataFrame:
        """Token rows of the given (layer, neuron) pairs, sorted by layer, neuron, rank."""
        if not keys or self.tokens.num_rows == 0:
            return self.tokens.slice(0, 0).to_pandas()
        layer = self.tokens.column("layer").to_numpy().astype(np.int64)
        neuron = self.tokens.column("neuron").to_numpy().astype(np.int64)
        wanted = np.array(sorted(a * (1 << 32) + b for a, b in keys), dtype=np.int64)
        mask = np.isin(layer * (1 << 32) + neuron, wanted)
        frame = self.tokens.filter(pa.array(mask)).to_pandas()
        return frame.sort_values(["layer", "neuron", "rank"], kind="stable").reset_index(drop=True)


def _read_parquet(path: str | None) -> pd.DataFrame:
    if not path or not Path(path).exists():
        return pd.DataFrame()
    return pd.read_parquet(path)


def load(inputs: dict[str, str], config: dict, config_hash: str,
         rules: list[str] | None = None) -> ReportData:
    """The run's tables, with `config` completed by the schema's defaults (the only place the
    report's defaults come from); `rules` are the workflow's rule names (for stage times)."""
    config = with_defaults(config)
    frames = {name: _read_parquet(inputs.get(name)) for name in TABLES}
    tokens_path = inputs.get("tokens")
    tokens = pq.read_table(tokens_path) if tokens_path and Path(tokens_path).exists() else (
        pa.table({"layer": pa.array([], pa.int16()), "neuron": pa.array([], pa.int32()),
                  "rank": pa.array([], pa.int16())}))
    provenance = {}
    for name in (*TABLES, "tokens"):
        path = inputs.get(name)
        if path and Path(path).exists():
            provenance[name] = read_provenance(path)
    extraction = {}
    if inputs.get("provenance") and Path(inputs["provenance"]).exists():
        try:
            extraction = h5io.read_attrs_only(inputs["provenance"])
        except Exception as exc:  # provenance must never stop the report
            log.warning("could not read provenance from %s: %s", inputs["provenance"], exc)
    openai, openai_meta = None, {}
    if "openai" in inputs:
        openai = _read_parquet(inputs["openai"])
        if len(openai):
            openai_meta = read_provenance(inputs["openai"])
    real = {name: _split(frames[name]) for name in ("neurons", "segments", "clusters")}
    return ReportData(
        neurons=real["neurons"][0], layers=frames["layers"], claims=frames["claims"],
        criteria=frames["criteria"], contrasts=frames["contrasts"],
        segments=real["segments"][0], clusters=real["clusters"][0],
        controls=real["neurons"][1], control_segments=real["segments"][1], tokens=tokens,
        config=config, config_hash=config_hash, extraction=extraction,
        table_provenance=provenance, stage_times=_stage_times(inputs.get("benchmarks") or [], set(rules or [])),
        openai=openai,
        openai_meta=openai_meta,
        ablation=_optional(inputs, "ablation"),
        ablation_layers=_optional(inputs, "ablation_layers"),
        labels=_optional(inputs, "labels"),
        label_layers=_optional(inputs, "label_layers"),
        labels_meta=read_provenance(inputs["labels"]) if "labels" in inputs else {},
        categories=_optional(inputs, "categories"),
        categories_meta=read_provenance(inputs["categories"]) if "categories" in inputs else {},
        categories_claims=_optional(inputs, "categories_claims"),
        categories_variant=(Path(inputs["categories_claims"]).parent.name
                            if "categories_claims" in inputs else ""),
    )


def _optional(inputs: dict[str, str], name: str) -> pd.DataFrame | None:
    """An optional input's table, or None when the rule did not give it."""
    return _read_parquet(inputs[name]) if name in inputs else None


def _split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(real neuron rows, control rows) of a table with a `kind` column."""
    if "kind" not in frame:
        return frame, frame.iloc[0:0]
    real = frame["kind"] == "neuron"
    return frame[real].reset_index(drop=True), frame[~real].reset_index(drop=True)


def rule_of(path: Path, rules: set[str] | None) -> str:
    """The rule a benchmark file belongs to. Benchmarks are laid out as
    `benchmarks/<model>/[<variant>/]<rule>[/<wildcards>...].tsv`, so the rule is the last part of
    the path (file stem included) that names a rule of the workflow; other parts are wildcard
    values (variants, core-token settings, proxies, shards). Without the rule names, the file's
    folder, or its stem directly under `benchmarks`."""
    parts = [*path.parent.parts, path.stem]
    if rules:
        found = next((p for p in reversed(parts) if p in rules), None)
        if found:
            return found
    return path.stem if path.parent.name == "benchmarks" else path.parent.name


def stage_times(paths: list[str], rules: set[str] | None = None) -> pd.DataFrame:
    """Wall time (summed over a rule's jobs) and peak memory per rule from Snakemake's
    benchmark files (`s` and `max_rss` in MB, last repeat)."""
    rows = []
    for path in map(Path, sorted(paths)):
        frame = pd.read_csv(path, sep="\t")
        rows.append({"rule": rule_of(path, rules), "jobs": 1, "wall_s": float(frame["s"].iloc[-1]),
                     "max_rss_mb": float(pd.to_numeric(frame["max_rss"],
                                                       errors="coerce").iloc[-1])})
    if not rows:
        return pd.DataFrame(columns=["rule", "jobs", "wall_s", "max_rss_mb"])
    out = pd.DataFrame(rows).groupby("rule", sort=False).agg(
        jobs=("jobs", "sum"), wall_s=("wall_s", "sum"), max_rss_mb=("max_rss_mb", "max"))
    return out.reset_index()


def _stage_times(paths: list[str], rules: set[str] | None) -> pd.DataFrame:
    """Stage times from the benchmark files the report rule declares as inputs."""
    try:
        return stage_times([str(p) for p in paths], rules)
    except Exception as exc:  # a half-written benchmark file must not stop the report
        log.warning("could not read stage times from %d benchmark files: %s", len(paths), exc)
        return pd.DataFrame(columns=["rule", "jobs", "wall_s", "max_rss_mb"])


def _effect(frame: pd.DataFrame) -> pd.Series:
    if EFFECT not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[EFFECT], errors="coerce").astype(float)


def strongest(frame: pd.DataFrame, n: int, exclude: set[int] = frozenset()) -> list[int]:
    """The n neurons of `frame` with the largest finite EFFECT (ties: lower neuron id)."""
    if n <= 0 or frame.empty:
        return []
    part = frame.assign(_e=_effect(frame))
    part = part[np.isfinite(part["_e"]) & ~part["neuron"].isin(exclude)]
    part = part.sort_values(["_e", "neuron"], ascending=[False, True], kind="stable")
    return [int(x) for x in part["neuron"].head(n)]


def typical(frame: pd.DataFrame, n: int, exclude: set[int] = frozenset()) -> list[int]:
    """The n neurons whose finite EFFECT is closest to the layer's median (ties: lower id)."""
    if n <= 0 or frame.empty:
        return []
    effect = _effect(frame)
    if not np.isfinite(effect).any():
        return []
    part = frame.assign(_d=(effect - float(np.nanmedian(effect))).abs())
    part = part[np.isfinite(part["_d"]) & ~part["neuron"].isin(exclude)]
    part = part.sort_values(["_d", "neuron"], kind="stable")
    return [int(x) for x in part["neuron"].head(n)]


def example_neurons(data: ReportData, layer: int) -> list[tuple[int, str]]:
    """config report.example_neurons per layer: half the strongest, half typical ones."""
    n = int(data.config["report"]["example_neurons"] or 0)
    frame = data.analyzed(layer)
    strong = strongest(frame, (n + 1) // 2)
    usual = typical(frame, n - len(strong), exclude=set(strong))
    picked = [(x, "strongest") for x in strong] + [(x, "typical") for x in usual]
    if len(picked) < n:  # too few neurons with a finite effect: fill in neuron order
        taken = {p for p, _ in picked}
        rest = sorted(x for x in frame["neuron"].astype(int) if x not in taken)
        picked += [(x, "other") for x in rest[: n - len(picked)]]
    return picked


def openai_by_layer(frame: pd.DataFrame) -> pd.DataFrame:
    """Per layer: neurons compared, files found, and overlap statistics over the found ones."""
    rows = []
    for layer, grp in frame.groupby("layer", sort=True):
        ok = grp[grp["found"].astype(bool)]
        frac = pd.to_numeric(ok["overlap_frac"], errors="coerce").dropna()
        rows.append({
            "layer": int(layer), "n_compared": len(grp), "n_found": len(ok),
            "overlap_frac_mean": frac.mean() if len(frac) else np.nan,
            "overlap_frac_median": frac.median() if len(frac) else np.nan,
            "jaccard_mean": pd.to_numeric(ok["jaccard"], errors="coerce").mean(),
            "overlap_norm_frac_mean": pd.to_numeric(ok["overlap_norm_frac"],
                                                    errors="coerce").mean(),
        })
    return pd.DataFrame(rows)
