"""Snakemake adapter: category labels of a model's clusters and segments, and their
distinctness."""

import pandas as pd

from intraneuron.labels.stage import label_model, write_tables
from intraneuron.runtime import package_versions, run_script
from intraneuron.tables import read_provenance


def main(smk, log):
    cfg = {**smk.params.labels, "threads": smk.params.labels["threads"] or smk.threads}
    tokens = pd.read_parquet(smk.input.tokens)
    tables, stats = label_model(tokens, cfg)
    log.info("labeller %s, prompts %s: %d labels, %d asked, %.2f labels/s", stats["backend"],
             stats["prompts"], stats["labels"], stats["asked"], stats["labels_per_s"])
    meta = {**read_provenance(smk.input.tokens), "labeller": stats["backend"],
            "prompts": stats["prompts"], "versions": package_versions()}
    write_tables(tables, {name: smk.output[name] for name in tables}, meta)


run_script(snakemake, main)
