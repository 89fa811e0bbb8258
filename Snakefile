# intraneuron: intra-neuronal attention in language models (Pichat et al., 2025, arXiv 2503.12992).
# Run: snakemake --cores all [--configfile config/demo.yaml]. Parameters: config/README.md.
import os
import sys

from snakemake.utils import min_version

# In a source checkout (also when this workflow is used as a module), the package next to the
# rules comes first, before anything imports it: for this process, and through PYTHONPATH for
# every job's script, so rules and package always match (whichever checkout an environment has
# installed) and per-rule conda environments need not install the package.
_SRC = os.path.join(workflow.current_basedir.get_path_or_uri(secret_free=True), "src")
if os.path.isdir(os.path.join(_SRC, "intraneuron")):
    _SRC = os.path.abspath(_SRC)
    sys.path.insert(0, _SRC)
    os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (_SRC, os.getenv("PYTHONPATH")) if p))

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
include: "workflow/rules/paths.smk"
include: "workflow/rules/inputs.smk"
include: "workflow/rules/settings.smk"
include: "workflow/rules/checks.smk"
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
