"""Snakemake adapter: per-neuron overlap of our core tokens with OpenAI's related tokens."""

import pandas as pd

from intraneuron.openai_compare import compare_with_openai, resolve_directory
from intraneuron.runtime import package_versions, run_script
from intraneuron.tables import atomic_parquet, read_provenance


def main(smk, log):
    directory = smk.params.directory
    if not directory:
        raise ValueError("openai_comparison.directory is not set: point it at OpenAI's "
                         "related-tokens/activation-based release (or a folder holding it)")
    tokens_path = smk.input.tokens
    tokens = pd.read_parquet(tokens_path, columns=["layer", "neuron", "rank", "token"])
    frame = compare_with_openai(tokens, directory, int(smk.params.top_n))
    meta = {**read_provenance(tokens_path), "openai_directory": str(resolve_directory(directory)),
            "top_n": int(smk.params.top_n), "versions": package_versions()}
    atomic_parquet(frame, smk.output.overlap, meta)


run_script(snakemake, main)
