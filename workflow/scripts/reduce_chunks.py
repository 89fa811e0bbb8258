"""Snakemake adapter: exact merge of one layer over corpus chunks."""

from intraneuron.pipeline import reduce_chunks
from intraneuron.runtime import run_script


def main(smk, log):
    reduce_chunks(list(smk.input.chunks), smk.output.stats, int(smk.wildcards.layer))


run_script(snakemake, main)
