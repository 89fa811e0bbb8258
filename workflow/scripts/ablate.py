"""Snakemake adapter: ablation of one part of one layer's neuron sample, measured on the next
layer (intraneuron.ablation_stage.ablate_part)."""

from intraneuron.ablation_stage import ablate_part
from intraneuron.runtime import run_script


def main(smk, log):
    inputs = {name: smk.input[name] for name in ("tokens", "core", "neurons", "embeddings")}
    ablate_part(inputs, smk.output.table, model=smk.params.model, dtype=smk.params.dtype,
                device=smk.params.device, batch_tokens=smk.params.batch_tokens,
                ablation=smk.params.ablation, layer=int(smk.wildcards.layer),
                part=int(smk.wildcards.part))


run_script(snakemake, main)
