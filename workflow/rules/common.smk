# Config validation, the shard plan and path helpers. Everything here runs at parse time and must
# never load model weights: `snakemake -n` has to work offline.
import os
import re
import sys

# In a source checkout (also when this workflow is used as a module), the package next to the
# rules comes first: for this process, and through PYTHONPATH for every job's script, so rules
# and package always match and per-rule conda environments need not install the package.
_SRC = os.path.join(workflow.current_basedir.get_path_or_uri(secret_free=True), "..", "..", "src")
if os.path.isdir(os.path.join(_SRC, "intraneuron")):
    _SRC = os.path.abspath(_SRC)
    sys.path.insert(0, _SRC)
    os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (_SRC, os.getenv("PYTHONPATH")) if p))

from intraneuron.config import BASE_VARIANT, ConfigError, run_configs, subset_hash, validate
from intraneuron.convert import checkpoint_dir, is_gguf_id
from intraneuron.corpus import corpus_files
from intraneuron.models import ModelError
from intraneuron.plan import (
    ablated_layers,
    core_key,
    local_model_files,
    neurons_per_layer,
    PROXY_KEYS,
    proxy_key,
    shards,
)
from intraneuron.runtime import drop_stale_report, gpu_request_problem, retire_report

# Fast tokenizers fork-warn (and can deadlock) under Snakemake's job processes.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# RUNS: the full settings of every (model, variant); MODELS: each model's base settings.
try:
    validated = validate(config)
    config.clear()
    config.update(validated)
    RUNS = run_configs(config)
    MODELS = {name: variants[BASE_VARIANT] for name, variants in RUNS.items()}
    N_NEURONS = {name: neurons_per_layer(cfg) for name, cfg in MODELS.items()}
except (ConfigError, ModelError) as exc:
    sys.exit(f"intraneuron: {exc}")

SHARDS = {name: shards(cfg, N_NEURONS[name]) for name, cfg in MODELS.items()}
VARIANTS = sorted({variant for variants in RUNS.values() for variant in variants})


localrules:
    all,
    compare_openai,


# The results layout, one folder per run (config key `results`):
#   models/{model}/            corpus, activations, embeddings: shared by every variant
#   models/{model}/core/{core}/ core tokens: shared by the variants with equal core_tokens keys
#   models/{model}/variants/{variant}/  the analysis and its merged tables
#   robustness*.parquet, report/  the whole run: every model and variant side by side
RESULTS = config["results"]
MODEL_DIR = f"{RESULTS}/models/{{model}}"
VARIANT_DIR = f"{MODEL_DIR}/variants/{{variant}}"
CORE_DIR = f"{MODEL_DIR}/core/{{core}}/L{{layer}}/B{{block}}"
SHARD_DIR = f"{VARIANT_DIR}/shards/L{{layer}}/B{{block}}"
# Logs and stage times live with the results they explain: moving `results` moves them, and
# two configs with different `results` never overwrite each other's logs.
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
REPORT_HTML = f"{RESULTS}/report/index.html"


scattergather:
    extract=config["extract"]["chunks"],


wildcard_constraints:
    model="|".join(map(re.escape, RUNS)),
    variant="|".join(map(re.escape, VARIANTS)),
    layer=r"\d+",
    block=r"\d+",
    part=r"\d+",


# Config subsets: each rule receives (and is rerun on changes of) only what it depends on, for
# its own model and variant.
def base_tables(wildcards):
    """A model's merged base-variant tables, by report input name."""
    base = f"{RESULTS}/models/{wildcards.model}/variants/{BASE_VARIANT}"
    main = {name: f"{base}/{name}.parquet" for name in ("neurons", "layers", "claims", "criteria")}
    extra = {
        name: f"{base}/tables/{name}.parquet"
        for name in ("contrasts", "tokens", "segments", "clusters")
    }
    return {**main, **extra}


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


def model_identity(wildcards):
    """What names a model's weights (random ones by their seed)."""
    model = MODELS[wildcards.model]["model"]
    keys = ["id", "revision", "architecture"]
    if model["weights"] == "random":  # pretrained models keep their params: no reruns
        keys += ["weights", "init_seed"]
    return {k: model[k] for k in keys}


def extraction_settings(wildcards):
    cfg = MODELS[wildcards.model]
    return {
        "model": model_identity(wildcards),
        "dtype": cfg["model"]["dtype"],
        "layers": sorted(cfg["layers"]),
        "n_neurons": N_NEURONS[wildcards.model],
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


def core_of(model, variant):
    return core_key(RUNS[model][variant])


def proxy_of(model, variant):
    return proxy_key(RUNS[model][variant]["analysis"])


def core_file(wildcards):
    core = core_of(wildcards.model, wildcards.variant)
    return f"{RESULTS}/models/{wildcards.model}/core/{core}/L{wildcards.layer}/B{wildcards.block}/core_tokens.h5"


def proxy_file(wildcards):
    proxy = proxy_of(wildcards.model, wildcards.variant)
    return f"{RESULTS}/models/{wildcards.model}/embeddings/{proxy}.h5"


def base_proxy_file(wildcards):
    proxy = proxy_of(wildcards.model, BASE_VARIANT)
    return f"{RESULTS}/models/{wildcards.model}/embeddings/{proxy}.h5"


def proxy_settings(wildcards):
    """The analysis keys that decide a proxy's vectors (any variant naming this proxy key)."""
    for variant, cfg in RUNS[wildcards.model].items():
        if proxy_of(wildcards.model, variant) == wildcards.proxy:
            a = cfg["analysis"]
            return {k: a[k] for k in PROXY_KEYS}
    raise ValueError(f"no variant of model {wildcards.model} uses proxy {wildcards.proxy}")


def shard_outputs(name):
    """An input function: a file of every shard of the job's (model, variant)."""
    return lambda wildcards: [
        f"{RESULTS}/models/{wildcards.model}/variants/{wildcards.variant}/shards/"
        f"L{s.layer}/B{s.block}/{name}"
        for s in SHARDS[wildcards.model]
    ]


def core_outputs(wildcards):
    core = core_of(wildcards.model, wildcards.variant)
    return [
        f"{RESULTS}/models/{wildcards.model}/core/{core}/L{s.layer}/B{s.block}/core_tokens.h5"
        for s in SHARDS[wildcards.model]
    ]


def layer_file(wildcards):
    """The job's model's first layer statistics: its extraction provenance."""
    return f"{RESULTS}/models/{wildcards.model}/activations/L{min(MODELS[wildcards.model]['layers'])}.h5"


def extract_chunks(wildcards):
    return gather.extract(
        f"{RESULTS}/models/{wildcards.model}/activations/chunks/{{scatteritem}}.h5"
    )


OPENAI = config["openai_comparison"]


# Models with an ablation stage: enabled, and a layer below their last analysed one.
ABLATED = {
    name: ablated_layers(cfg["layers"])
    for name, cfg in MODELS.items()
    if cfg["ablation"]["enabled"] and ablated_layers(cfg["layers"])
}


def ablation_parts(wildcards):
    parts = range(MODELS[wildcards.model]["ablation"]["parts"])
    return [
        f"{RESULTS}/models/{wildcards.model}/ablation/L{layer}/P{part}.parquet"
        for layer in ABLATED[wildcards.model]
        for part in parts
    ]


def ablation_tables(model):
    return {
        "ablation": f"{RESULTS}/models/{model}/ablation.parquet",
        "ablation_layers": f"{RESULTS}/models/{model}/ablation_layers.parquet",
    }


def model_optional_outputs(wildcards):
    """Outputs of optional stages for one model's page, by report input name."""
    optional = {}
    if OPENAI["directory"]:
        optional["openai"] = f"{RESULTS}/models/{wildcards.model}/openai_overlap.parquet"
    if wildcards.model in ABLATED:
        optional.update(ablation_tables(wildcards.model))
    return optional


def variant_tables(name):
    """Every (model, variant)'s merged table `name`, in RUN_LIST order."""
    return [f"{RESULTS}/models/{m}/variants/{v}/{name}.parquet" for m, v, _ in RUN_LIST]


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
MODEL_PAGES = [f"{RESULTS}/report/models/{name}.html" for name in MODELS]


def final_outputs():
    optional = (
        [f"{RESULTS}/models/{m}/openai_overlap.parquet" for m in MODELS]
        if OPENAI["directory"]
        else []
    )
    return [
        *variant_tables("claims"),
        f"{RESULTS}/robustness.parquet",
        *MODEL_PAGES,
        REPORT_HTML,
        *optional,
    ]


# Input files: editing a corpus file (or adding one to the glob) or a local model's weights reruns
# the jobs that read them. Hub models are pinned by their revision, a params entry.
MODEL_FILES = {name: local_model_files(cfg["model"]) for name, cfg in MODELS.items()}


def model_checkpoint(wildcards):
    model_id = MODELS[wildcards.model]["model"]["id"]
    return [str(checkpoint_dir(model_id))] if is_gguf_id(model_id) else []


def model_inputs(wildcards):
    return MODEL_FILES[wildcards.model] + model_checkpoint(wildcards)


def corpus_inputs(wildcards):
    return corpus_files(MODELS[wildcards.model]["corpus"])


onstart:
    problem = gpu_request_problem(
        workflow.executor_plugin.name if workflow.executor_plugin else None,
        dict(rules.extract.rule.resources),
        min((cfg["model"]["device"] for cfg in MODELS.values()), key=lambda d: d == "cpu"),
    )
    if problem:
        sys.exit(f"intraneuron: {problem}")
    # A page whose job runs is stale until it is rebuilt: moved aside, marked, so a failed run
    # leaves no page that looks current. (Pages of models whose jobs do not run stay.)
    for job in workflow.dag.needrun_jobs():
        if job.rule.name in ("report", "report_model"):
            page = job.output[0]
            stale = retire_report(page)
            if stale:
                print(
                    f"intraneuron: {page} moved to {stale} (marked STALE) until this run "
                    "rebuilds it",
                    file=sys.stderr,
                )


onsuccess:
    for page in (REPORT_HTML, *MODEL_PAGES):
        drop_stale_report(page)


def benchmark_inputs(wildcards):
    """Every benchmark file of the jobs before a model's page: the stage times it shows."""
    model, variant = wildcards.model, BASE_VARIANT
    core, proxy = core_of(model, variant), proxy_of(model, variant)
    keys = dict(model=model, variant=variant, core=core, proxy=proxy)
    shards = SHARDS[model]
    return [
        rules.prepare_corpus.benchmark.format(**keys),
        *[
            rules.extract.benchmark.format(scatteritem=item, **keys)
            for item in gather.extract("{scatteritem}")
        ],
        *[
            rules.reduce_chunks.benchmark.format(layer=layer, **keys)
            for layer in MODELS[model]["layers"]
        ],
        rules.embeddings.benchmark.format(**keys),
        *[rules.core_tokens.benchmark.format(layer=s.layer, block=s.block, **keys) for s in shards],
        *[rules.analyze.benchmark.format(layer=s.layer, block=s.block, **keys) for s in shards],
        rules.merge.benchmark.format(**keys),
    ]
