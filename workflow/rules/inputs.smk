# What each job depends on besides other jobs' outputs: the config subsets passed as params (each
# rule receives, and is rerun on changes of, only what it depends on, for its own model and
# variant; settings.smk writes them to files too) and the files the config names.
def model_config_hash(wildcards):
    return subset_hash(MODELS[wildcards.model])


def model_setting(*keys):
    """A params function: the setting at `keys` of the job's model (base variant)."""

    def get(wildcards):
        value = MODELS[wildcards.model]
        for key in keys:
            value = value[key]
        return value

    return get


def variant_setting(section):
    """A params function: a section of the job's (model, variant) settings."""
    return lambda wildcards: RUNS[wildcards.model][wildcards.variant][section]


def model_threads(wildcards):
    """Threads of a job that runs the model (or its labeller): model.threads, else every core."""
    return MODELS[wildcards.model]["model"]["threads"] or workflow.cores


def model_identity(wildcards):
    """What names a model's weights (random ones by their seed)."""
    model = MODELS[wildcards.model]["model"]
    keys = ["id", "revision", "architecture"]
    if model["weights"] == "random":  # pretrained models keep their params: no reruns
        keys += ["weights", "init_seed"]
    return {k: model[k] for k in keys}


def extraction_settings(wildcards):
    cfg = MODELS[wildcards.model]
    skip = cfg["extract"]["skip_first_positions"]  # only when set: 0 keeps older cache keys
    return {
        "model": model_identity(wildcards),
        "dtype": cfg["model"]["dtype"],
        "layers": sorted(cfg["layers"]),
        "n_neurons": N_NEURONS[wildcards.model],
        **({"skip_first_positions": skip} if skip else {}),
    }


def shard_plan(wildcards):
    """What names a model's shards: its layers, the neurons per layer and the block size."""
    cfg = MODELS[wildcards.model]
    layers = sorted(cfg["layers"])
    return {
        "layers": layers,
        "n_neurons": N_NEURONS[wildcards.model],
        "block_size": cfg["block_size"],
    }


def shard_bounds(wildcards):
    size = MODELS[wildcards.model]["block_size"]
    start = int(wildcards.block) * size
    return {"start": start, "stop": min(start + size, N_NEURONS[wildcards.model])}


def core_settings(wildcards):
    """The core_tokens section behind a core folder (every variant naming it has the same)."""
    for variant, cfg in RUNS[wildcards.model].items():
        if core_key(cfg) == wildcards.core:
            return cfg["core_tokens"]
    raise ValueError(f"no variant of model {wildcards.model} selects core tokens {wildcards.core}")


def proxy_settings(wildcards):
    """The analysis keys that decide a proxy's vectors (any variant naming this proxy key)."""
    for variant, cfg in RUNS[wildcards.model].items():
        if proxy_of(wildcards.model, variant) == wildcards.proxy:
            a = cfg["analysis"]
            return {k: a[k] for k in PROXY_KEYS}
    raise ValueError(f"no variant of model {wildcards.model} uses proxy {wildcards.proxy}")


def category_settings(wildcards):
    """What a core folder's prompt-based categories depend on: the labeller, its prompts and
    the WordNet folder of the validity check (of the first llm variant with this folder)."""
    for variant in llm_variants(wildcards.model):
        if core_of(wildcards.model, variant) == wildcards.core:
            wordnet_dir = RUNS[wildcards.model][variant]["analysis"]["wordnet_dir"]
            return {
                "labeller": LABELS["model"],
                "prompts": default_prompts().key,
                "wordnet_dir": wordnet_dir,
            }
    raise ValueError(f"no llm variant of model {wildcards.model} uses core tokens {wildcards.core}")


# Input files: editing a corpus file (or adding one to the glob) or a local model's weights reruns
# the jobs that read them. Hub models are pinned by their revision, a params entry.
MODEL_FILES = {name: local_model_files(cfg["model"]) for name, cfg in MODELS.items()}


def model_checkpoint(wildcards):
    model_id = MODELS[wildcards.model]["model"]["id"]
    return [str(checkpoint_dir(model_id))] if is_gguf_id(model_id) else []


def gguf_file(wildcards):
    """The GGUF file itself: a replaced file (or an upgraded package shipping it) reconverts."""
    return str(gguf_source(GGUF_MODELS[wildcards.name]))


def model_inputs(wildcards):
    return MODEL_FILES[wildcards.model] + model_checkpoint(wildcards)


def corpus_inputs(wildcards):
    return corpus_files(MODELS[wildcards.model]["corpus"])


def ablation_run(wildcards):
    """The ablation settings a forward pass depends on: alpha and swaps decide only the layer
    verdict (merge_ablation), so changing them reruns no forward pass."""
    return {
        k: v for k, v in MODELS[wildcards.model]["ablation"].items() if k not in ("alpha", "swaps")
    }


# The labelling stage (rules/label.smk): its settings, and the local labeller's checkpoint.
LABELS = config["labels"]
LABEL_SETTINGS = label_settings(LABELS, default_prompts().key)


def labeller_inputs(wildcards):
    """The local labeller's checkpoint folder when it is a file here (plan.labeller_checkpoint)."""
    return LABELLER
