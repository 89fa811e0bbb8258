"""Snakemake adapter: clustering, segments, interleaving and their statistics for one shard."""

from intraneuron.pipeline import analyze_core_shard
from intraneuron.runtime import run_script


def main(smk, log):
    outputs = {name: smk.output[name] for name in ("neurons", "tokens", "segments", "clusters")}
    analyze_core_shard(smk.input.core, smk.input.embeddings, outputs, smk.params.analysis)


run_script(snakemake, main)
