"""Snakemake adapter: the self-contained HTML report and its figures."""

from intraneuron.report import build_report
from intraneuron.runtime import run_script


def main(smk, log):
    build_report(dict(smk.input), smk.output.html, smk.output.figures, smk.params.config,
                 smk.params.config_hash)


run_script(snakemake, main)
