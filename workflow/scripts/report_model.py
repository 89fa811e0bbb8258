"""Snakemake adapter: a model's HTML report, its figures and its neuron browser's data files."""

from intraneuron.report import build_report
from intraneuron.runtime import run_script


def main(smk, log):
    build_report(dict(smk.input), smk.output.html, smk.output.figures, smk.params.config,
                 smk.params.config_hash, smk.output.data,
                 {**dict(smk.params.site), "rules": list(smk.params.rules)})


run_script(snakemake, main)
