"""Snakemake adapter: all shards into per-neuron, per-layer and claims tables."""

from intraneuron.pipeline import merge_tables
from intraneuron.runtime import run_script


def main(smk, log):
    inputs = {name: list(smk.input[name])
              for name in ("neurons", "tokens", "segments", "clusters", "core")}
    outputs = {name: smk.output[name]
               for name in ("neurons", "layers", "claims", "tokens", "segments", "clusters")}
    merge_tables(inputs, outputs, smk.params.analysis)


run_script(snakemake, main)
