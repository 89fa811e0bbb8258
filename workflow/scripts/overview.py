"""Snakemake adapter: the run's overview page (report/index.html) across models and variants.

input.claims and input.layers hold one table per entry of params.runs, in that order;
input.ablation holds one ablation_layers table per model of params.ablated, in that order;
input.pages follows the order of params.models; input.criteria (optional) the order of
params.runs. output.files (optional) receives the overview's figure and CSV tables.
"""

import pandas as pd

from intraneuron.report.overview import ModelVariant, build_overview
from intraneuron.runtime import run_script


def paths(smk, name: str) -> list[str]:
    value = getattr(smk.input, name, [])
    return [value] if isinstance(value, str) else list(value)


def per_model(smk, name: str, models: list[str]) -> dict[str, str]:
    given = paths(smk, name)
    if given and len(given) != len(models):
        raise ValueError(f"input.{name} has {len(given)} paths for {len(models)} models: give "
                         "one per model, in the order of params.models, or none")
    return dict(zip(models, given, strict=False))


def main(smk, log):
    runs, models = list(smk.params.runs), dict(smk.params.models)
    claims, layers = paths(smk, "claims"), paths(smk, "layers")
    if not len(claims) == len(layers) == len(runs):
        raise ValueError(f"{len(claims)} claims and {len(layers)} layers tables for {len(runs)} "
                         "runs: they must list the (model, variant) pairs in the same order")
    criteria = paths(smk, "criteria") or [None] * len(runs)  # optional: the pass-rate figure
    if len(criteria) != len(runs):
        raise ValueError(f"{len(criteria)} criteria tables for {len(runs)} runs: give one per "
                         "(model, variant) pair, in the order of params.runs, or none")
    tables = [ModelVariant(r["model"], r["variant"], pd.read_parquet(c), pd.read_parquet(lp),
                           r.get("settings") or {}, pd.read_parquet(cr) if cr else None)
              for r, c, lp, cr in zip(runs, claims, layers, criteria, strict=True)]
    ablated = list(smk.params.ablated)  # the models with an ablation stage, in input order
    ablation = {m: pd.read_parquet(p) for m, p in per_model(smk, "ablation", ablated).items()}
    build_overview(tables, pd.read_parquet(smk.input.matrix), pd.read_parquet(smk.input.summary),
                   models, smk.output.html, dict(smk.params.config), ablation,
                   per_model(smk, "pages", list(models)), getattr(smk.output, "files", None))


run_script(snakemake, main)
