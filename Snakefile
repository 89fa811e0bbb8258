# intraneuron: intra-neuronal attention in language models (Pichat et al., 2025, arXiv 2503.12992).
# Run from here: snakemake --cores all [--configfile config/demo.yaml]. Parameters: config/README.md.
# The rules live in workflow/Snakefile (where the Snakemake workflow catalog looks); this file
# only loads it, so both entry points (and `module ... snakefile:` on either) run one workflow.

# Loaded as Snakemake loads a main Snakefile: a plain `include:` would drop its default target
# (`rule all`), and `snakemake` without targets would then have nothing to do.
workflow.include("workflow/Snakefile", overwrite_default_target=True)
