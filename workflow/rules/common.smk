# The run's plan (intraneuron.plan.plan_run: the config validated, each model's and variant's
# settings merged in the package) and what Snakemake needs of it before any rule. Everything
# here runs at parse time and must never load model weights: `snakemake -n` works offline.
# Paths: paths.smk; params and input functions: inputs.smk and settings.smk; checks at start
# and end of a run: checks.smk.
import os
import re
import sys

from intraneuron.config import (
    BASE_VARIANT,
    ConfigError,
    label_settings,
    labelled_models,
    subset_hash,
)
from intraneuron.convert import checkpoint_dir, gguf_source, is_gguf_id
from intraneuron.labels import default_prompts
from intraneuron.corpus import corpus_files
from intraneuron.models import ModelError
from intraneuron.plan import (
    PROXY_KEYS,
    core_key,
    labeller_checkpoint,
    local_model_files,
    plan_run,
    proxy_key,
)
from intraneuron.runtime import drop_stale_report, gpu_request_problem, retire_report

# Fast tokenizers fork-warn (and can deadlock) under Snakemake's job processes.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    PLAN = plan_run(config)
    # LABELLED: the models whose clusters and segments the labelling stage names
    LABELLED = labelled_models(PLAN.config["labels"], list(PLAN.models))
    # LABELLER: the local labeller's checkpoint folder, when a job asks it and it is a file here
    LABELLER = labeller_checkpoint(
        PLAN.config["labels"],
        PLAN.models,
        bool(LABELLED)
        or any(
            cfg["analysis"]["proxy"] == "llm"
            for variants in PLAN.runs.values()
            for cfg in variants.values()
        ),
    )
except (ConfigError, ModelError) as exc:
    sys.exit(f"intraneuron: {exc}")
config.clear()
config.update(PLAN.config)
# RUNS: the full settings of every (model, variant); MODELS: each model's base settings;
# ABLATED: the models with an ablation stage, and their ablated layers.
RUNS, MODELS, VARIANTS = PLAN.runs, PLAN.models, PLAN.variants
N_NEURONS, SHARDS, ABLATED = PLAN.n_neurons, PLAN.shards, PLAN.ablated
OPENAI = config["openai_comparison"]


localrules:
    all,
    compare_openai,


scattergather:
    extract=config["extract"]["chunks"],


wildcard_constraints:
    model="|".join(map(re.escape, RUNS)),
    variant="|".join(map(re.escape, VARIANTS)),
    layer=r"\d+",
    block=r"\d+",
    part=r"\d+",


RUN_LIST = [(m, v, cfg) for m, variants in RUNS.items() for v, cfg in variants.items()]
RUN_DESCRIPTIONS = [
    {
        "model": m,
        "variant": v,
        "settings": {k: x for k, x in config["variants"].get(v, {}).items() if k != "models"},
    }
    for m, v, _ in RUN_LIST
]
MODEL_DESCRIPTIONS = {
    name: {
        "id": cfg["model"]["id"],
        "weights": cfg["model"].get("weights", "pretrained"),
        "layers": sorted(cfg["layers"]),
    }
    for name, cfg in MODELS.items()
}
