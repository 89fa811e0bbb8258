# intraneuron: intra-neuronal attention in language models (Pichat et al., 2025, arXiv 2503.12992).
# Run: snakemake --cores all [--configfile config/demo.yaml]. Parameters: config/README.md.
from snakemake.utils import min_version

from intraneuron.config import check_config_file

min_version("9.0")


# The paper's setup unless a config is given (`--configfile config/demo.yaml` replaces it whole);
# a missing, non-YAML or non-mapping file is named (with the line) before Snakemake reads it.
# Used as a module with a `config:`, the module's config replaces this file (Snakemake skips it).
if not workflow.config_settings.configfiles:
    if not workflow.modifier.skip_configfile:
        check_config_file("config/config.yaml")

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/ablate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
