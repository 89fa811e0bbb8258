"""Snakemake adapter: the power check of the beyond-geometry level for one model and variant."""

from intraneuron.pipeline import check_power
from intraneuron.runtime import run_script


def main(smk, log):
    check_power(smk.input.core, smk.input.embeddings, smk.output.power, smk.params.analysis)


run_script(snakemake, main)
