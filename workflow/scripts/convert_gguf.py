"""Snakemake adapter: convert a gguf: model id's file into a safetensors checkpoint."""

from intraneuron.convert import gguf_source, gguf_to_checkpoint
from intraneuron.runtime import run_script


def main(smk, log):
    source = gguf_source(smk.params.source)
    log.info("converting %s (%s)", smk.params.source, source)
    gguf_to_checkpoint(source, smk.output.checkpoint)


run_script(snakemake, main)
