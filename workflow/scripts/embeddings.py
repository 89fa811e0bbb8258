"""Snakemake adapter: the categorical-proximity vectors of every token id."""

from intraneuron.pipeline import proxy_embeddings
from intraneuron.runtime import run_script


def main(smk, log):
    proxy_embeddings(smk.output.matrix, smk.wildcards.proxy, smk.params.model,
                     smk.params.sentence_model, smk.params.wordnet_dir)


run_script(snakemake, main)
