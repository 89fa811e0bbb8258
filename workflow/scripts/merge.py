"""Snakemake adapter: all shards into per-neuron, per-layer, criteria and claims tables."""

from intraneuron.pipeline import merge_tables
from intraneuron.runtime import run_script


def main(smk, log):
    inputs = {name: list(smk.input[name])
              for name in ("neurons", "tokens", "segments", "clusters", "core", "power")}
    outputs = dict(smk.output.items())
    merge_tables(inputs, outputs, smk.params.analysis)


run_script(snakemake, main)
