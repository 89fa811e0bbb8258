"""Snakemake adapter: the prompt-based category of every token eligible to be a core token."""

from intraneuron.labels.categories import categorize_vocabulary, validity
from intraneuron.pipeline import eligible_vocabulary
from intraneuron.runtime import package_versions, run_script
from intraneuron.tables import atomic_parquet


def main(smk, log):
    cfg = {**smk.params.labels, "threads": smk.params.labels["threads"] or smk.threads}
    ids, texts = eligible_vocabulary(smk.input.stats, smk.params.layer, smk.params.core_tokens,
                                     smk.params.model)
    table, stats = categorize_vocabulary(ids, texts.tolist(), cfg,
                                         smk.params.categories["wordnet_dir"])
    check = validity(table)
    log.info("labeller %s, prompts %s: %d tokens sorted (%d scored now); AMI with WordNet %.3f "
             "on the %d it covers", stats["labeller"], stats["prompts"], len(table),
             stats["asked"], check["ami_wordnet"], check["n_wordnet"])
    atomic_parquet(table, smk.output.categories,
                   {"labeller": stats["labeller"], "prompts": stats["prompts"],
                    "versions": package_versions()})


run_script(snakemake, main)
