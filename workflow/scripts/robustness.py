"""Snakemake adapter: every (model, variant) claims table into the robustness matrix and its
holds-in summary, each variant marked where it repeats base's computation for a claim."""

import pandas as pd

from intraneuron.analysis import resolve_params
from intraneuron.analysis.robustness import (
    PAPER,
    robustness_matrix,
    robustness_summary,
    same_as_base,
)
from intraneuron.runtime import package_versions, run_script
from intraneuron.tables import atomic_parquet


def repeats(runs, claims, criteria, neurons):
    """(model, variant, layer, claim) -> same as base, for every non-base run whose model ran
    base; each model's base tables are read once."""
    base = {r["model"]: i for i, r in enumerate(runs) if r["variant"] == PAPER}
    params, out = resolve_params(None), {}
    for model, b in base.items():
        ref = {"criteria": pd.read_parquet(criteria[b]), "neurons": pd.read_parquet(neurons[b])}
        for i, run in enumerate(runs):
            if run["model"] != model or i == b:
                continue
            mine = {"criteria": pd.read_parquet(criteria[i]),
                    "neurons": pd.read_parquet(neurons[i])}
            for (layer, claim), same in same_as_base(claims[i], ref, mine, params).items():
                out[(model, run["variant"], layer, claim)] = same
    return out


def main(smk, log):
    paths, runs = list(smk.input.claims), list(smk.params.runs)
    criteria, neurons = list(smk.input.criteria), list(smk.input.neurons)
    if not len(paths) == len(runs) == len(criteria) == len(neurons):
        raise ValueError(f"{len(paths)} claims, {len(criteria)} criteria and {len(neurons)} "
                         f"neurons tables for {len(runs)} runs: input.claims, input.criteria, "
                         "input.neurons and params.runs must list the (model, variant) pairs "
                         "in the same order")
    settings = {r["variant"]: r.get("settings") or {} for r in runs}
    clash = [r["variant"] for r in runs if (r.get("settings") or {}) != settings[r["variant"]]]
    if clash:
        raise ValueError(f"variant(s) {sorted(set(clash))} have different settings for "
                         "different models: a variant must mean the same overrides everywhere")
    claims = [pd.read_parquet(p) for p in paths]
    same = repeats(runs, claims, criteria, neurons)
    matrix = robustness_matrix(
        [(r["model"], r["variant"], c) for r, c in zip(runs, claims, strict=True)],
        settings, same)
    meta = {"runs": runs, "versions": package_versions()}
    atomic_parquet(matrix, smk.output.matrix, meta)
    atomic_parquet(robustness_summary(matrix), smk.output.summary, meta)
    log.info("robustness: %d runs, %d matrix rows, %d (variant, layer, claim) same as base",
             len(runs), len(matrix), sum(same.values()))


run_script(snakemake, main)
