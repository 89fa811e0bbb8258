"""Snakemake adapter: statistics of one corpus chunk (intraneuron.pipeline.extract_chunk)."""

from intraneuron.pipeline import extract_chunk, parse_scatteritem
from intraneuron.runtime import run_script


def main(smk, log):
    chunk, chunks = parse_scatteritem(smk.wildcards.scatteritem)
    extract_chunk(smk.input.tokens, smk.output.stats, smk.params.extraction,
                  device=smk.params.device, batch_tokens=smk.params.batch_tokens,
                  chunk=chunk, chunks=chunks)


run_script(snakemake, main)
