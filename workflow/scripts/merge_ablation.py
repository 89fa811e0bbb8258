"""Snakemake adapter: every ablation part into the per-neuron and per-layer ablation tables."""

from intraneuron.ablation_stage import merge_ablation
from intraneuron.runtime import run_script


def main(smk, log):
    merge_ablation(list(smk.input.parts), smk.output.ablation, smk.output.layers,
                   smk.params.ablation)


run_script(snakemake, main)
