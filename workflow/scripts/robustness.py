"""Snakemake adapter: every (model, variant) claims table into the robustness matrix and its
holds-in summary."""

import pandas as pd

from intraneuron.analysis.robustness import robustness_matrix, robustness_summary
from intraneuron.runtime import package_versions, run_script
from intraneuron.tables import atomic_parquet


def main(smk, log):
    paths, runs = list(smk.input.claims), list(smk.params.runs)
    if len(paths) != len(runs):
        raise ValueError(f"{len(paths)} claims tables for {len(runs)} runs: input.claims and "
                         "params.runs must list the (model, variant) pairs in the same order")
    settings = {r["variant"]: r.get("settings") or {} for r in runs}
    clash = [r["variant"] for r in runs if (r.get("settings") or {}) != settings[r["variant"]]]
    if clash:
        raise ValueError(f"variant(s) {sorted(set(clash))} have different settings for "
                         "different models: a variant must mean the same overrides everywhere")
    matrix = robustness_matrix(
        [(r["model"], r["variant"], pd.read_parquet(p)) for r, p in zip(runs, paths, strict=True)],
        settings)
    meta = {"runs": runs, "versions": package_versions()}
    atomic_parquet(matrix, smk.output.matrix, meta)
    atomic_parquet(robustness_summary(matrix), smk.output.summary, meta)
    log.info("robustness: %d runs, %d matrix rows", len(runs), len(matrix))


run_script(snakemake, main)
