# Prompt-based categories (intraneuron.labels): an instruct model names the base variant's
# clusters and coarse segments of each labelled model; the model's page shows the labels and
# the share of neurons whose cluster labels are distinct.
from intraneuron.labels.prompts import PROMPTS_PATH


rule label:
    input:
        tokens=f"{MODEL_DIR}/variants/{BASE_VARIANT}/tables/tokens.parquet",
        labeller=labeller_inputs,
        prompts=str(PROMPTS_PATH),
        settings=settings_file(f"{MODEL_SETTINGS}/labels.json", labels=LABEL_SETTINGS),
    output:
        **label_tables("{model}"),
    params:
        labels=LABELS,
    threads: model_threads
    log:
        f"{LOGS}/{{model}}/label.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/label.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/label.py"


# Prompt-based segmentation (analysis.proxy: llm): the labeller sorts the tokens eligible under
# a core-token selection into the closed category list (from the first layer's statistics, the
# same in every shard, so no shard job waits for it); the embeddings rule makes the vectors.
rule categorize:
    input:
        stats=layer_file,
        model=model_inputs,
        labeller=labeller_inputs,
        prompts=str(PROMPTS_PATH),
        settings=settings_file(
            f"{MODEL_SETTINGS}/categories-{{core}}.json", categories=category_settings
        ),
    output:
        categories=f"{MODEL_DIR}/categories/{{core}}.parquet",
    params:
        labels=LABELS,
        categories=category_settings,
        core_tokens=core_settings,
        model=model_identity,
        layer=lambda wildcards: min(MODELS[wildcards.model]["layers"]),
    threads: model_threads
    log:
        f"{LOGS}/{{model}}/categorize/{{core}}.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/categorize/{{core}}.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/categorize.py"
