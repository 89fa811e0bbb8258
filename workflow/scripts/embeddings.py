"""Snakemake adapter: the categorical-proximity vectors of every token id."""

from intraneuron.pipeline import proxy_embeddings
from intraneuron.runtime import run_script


def main(smk, log):
    proxy = smk.params.proxy
    proxy_embeddings(smk.output.matrix, proxy["proxy"], smk.params.model,
                     proxy["sentence_model"], proxy["wordnet_dir"], proxy["proxy_centering"],
                     proxy["proxy_remove_directions"], smk.input.get("categories"))


run_script(snakemake, main)
