# Where every output lives, and the input functions that name other jobs' outputs.
#
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


# Input functions: the outputs of other jobs that a job of one model (and variant) reads.
def base_tables(wildcards):
    """A model's merged base-variant tables, by report input name."""
    base = f"{RESULTS}/models/{wildcards.model}/variants/{BASE_VARIANT}"
    main = {name: f"{base}/{name}.parquet" for name in ("neurons", "layers", "claims", "criteria")}
    extra = {
        name: f"{base}/tables/{name}.parquet"
        for name in ("contrasts", "tokens", "segments", "clusters")
    }
    return {**main, **extra}


def core_of(model, variant):
    return core_key(RUNS[model][variant])


def proxy_of(model, variant):
    return proxy_key(RUNS[model][variant]["analysis"], core_of(model, variant))


def core_file(wildcards):
    core = core_of(wildcards.model, wildcards.variant)
    return f"{RESULTS}/models/{wildcards.model}/core/{core}/L{wildcards.layer}/B{wildcards.block}/core_tokens.h5"


def proxy_file(wildcards):
    proxy = proxy_of(wildcards.model, wildcards.variant)
    return f"{RESULTS}/models/{wildcards.model}/embeddings/{proxy}.h5"


def base_proxy_file(wildcards):
    proxy = proxy_of(wildcards.model, BASE_VARIANT)
    return f"{RESULTS}/models/{wildcards.model}/embeddings/{proxy}.h5"


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


def first_core_file(wildcards):
    """Core tokens of the variant's first shard: its eligible vocabulary (the same in all)."""
    return core_outputs(wildcards)[0]


def layer_file(wildcards):
    """The job's model's first layer statistics: its extraction provenance."""
    return f"{RESULTS}/models/{wildcards.model}/activations/L{min(MODELS[wildcards.model]['layers'])}.h5"


def extract_chunks(wildcards):
    return gather.extract(
        f"{RESULTS}/models/{wildcards.model}/activations/chunks/{{scatteritem}}.h5"
    )


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


def label_tables(model):
    """The labelling stage's tables of a model, by report input name."""
    return {
        "labels": f"{RESULTS}/models/{model}/labels/labels.parquet",
        "label_neurons": f"{RESULTS}/models/{model}/labels/neurons.parquet",
        "label_layers": f"{RESULTS}/models/{model}/labels/layers.parquet",
    }


def categories_file(model, core):
    """The prompt-based categories of a core folder's eligible tokens (analysis.proxy: llm)."""
    return f"{RESULTS}/models/{model}/categories/{core}.parquet"


def llm_variants(model):
    """The model's variants whose proxy is the prompt-based categories, in config order."""
    return [v for v, cfg in RUNS[model].items() if cfg["analysis"]["proxy"] == "llm"]


def proxy_categories(wildcards):
    """The llm proxy's categories table; nothing for the other proxies."""
    if wildcards.proxy.startswith("llm-"):
        return categories_file(wildcards.model, wildcards.proxy.removeprefix("llm-"))
    return []


def model_optional_outputs(wildcards):
    """Outputs of optional stages for one model's page, by report input name."""
    optional = {}
    llm = llm_variants(wildcards.model)
    if llm:
        optional["categories"] = categories_file(wildcards.model, core_of(wildcards.model, llm[0]))
        optional["categories_claims"] = (
            f"{RESULTS}/models/{wildcards.model}/variants/{llm[0]}/claims.parquet"
        )
    if wildcards.model in LABELLED:
        optional.update(label_tables(wildcards.model))
    if OPENAI["directory"]:
        optional["openai"] = f"{RESULTS}/models/{wildcards.model}/openai_overlap.parquet"
    if wildcards.model in ABLATED:
        optional.update(ablation_tables(wildcards.model))
    return optional


def variant_tables(name):
    """Every (model, variant)'s merged table `name`, in RUN_LIST order."""
    return [f"{RESULTS}/models/{m}/variants/{v}/{name}.parquet" for m, v, _ in RUN_LIST]


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
