"""Snakemake adapter: core tokens of one shard (layer × neuron block)."""

from intraneuron.pipeline import core_token_shard
from intraneuron.runtime import run_script


def main(smk, log):
    bounds = smk.params.bounds
    core_token_shard(smk.input.stats, smk.input.tokens, smk.output.core, smk.params.core_tokens,
                     int(smk.wildcards.layer), bounds["start"], bounds["stop"], smk.params.model)


run_script(snakemake, main)
