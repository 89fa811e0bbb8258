# What an analysis shard and its merge depend on: the variant's analysis settings and the
# choices that name their input files (core-token folder, proxy file, the shard plan).
variant_settings = settings_file(
    f"{MODEL_SETTINGS}/variant-{{variant}}.json",
    analysis=variant_setting("analysis"),
    core=lambda wildcards: core_of(wildcards.model, wildcards.variant),
    proxy=lambda wildcards: proxy_of(wildcards.model, wildcards.variant),
    plan=shard_plan,
)


rule core_tokens:
    input:
        stats=rules.reduce_chunks.output.stats,
        tokens=rules.prepare_corpus.output.tokens,
        model=model_inputs,
        settings=settings_file(
            f"{MODEL_SETTINGS}/core-{{core}}.json",
            core_tokens=core_settings,
            plan=shard_plan,
            model=model_identity,
        ),
    output:
        core=f"{CORE_DIR}/core_tokens.h5",
    params:
        core_tokens=core_settings,
        bounds=shard_bounds,
        model=model_identity,
    group:
        "shard"
    log:
        f"{LOGS}/{{model}}/core_tokens/{{core}}/L{{layer}}_B{{block}}.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/core_tokens/{{core}}/L{{layer}}_B{{block}}.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/core_tokens.py"


rule analyze:
    input:
        core=core_file,
        embeddings=proxy_file,
        settings=variant_settings,
    output:
        neurons=f"{SHARD_DIR}/neurons.parquet",
        tokens=f"{SHARD_DIR}/tokens.parquet",
        segments=f"{SHARD_DIR}/segments.parquet",
        clusters=f"{SHARD_DIR}/clusters.parquet",
    params:
        analysis=variant_setting("analysis"),
    group:
        "shard"
    log:
        f"{LOGS}/{{model}}/{{variant}}/analyze/L{{layer}}_B{{block}}.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/{{variant}}/analyze/L{{layer}}_B{{block}}.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/analyze.py"


rule check_power:
    input:
        core=first_core_file,
        embeddings=proxy_file,
        settings=variant_settings,
    output:
        power=f"{VARIANT_DIR}/power.parquet",
    params:
        analysis=variant_setting("analysis"),
    log:
        f"{LOGS}/{{model}}/{{variant}}/check_power.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/{{variant}}/check_power.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/check_power.py"


rule merge:
    input:
        neurons=shard_outputs("neurons.parquet"),
        tokens=shard_outputs("tokens.parquet"),
        segments=shard_outputs("segments.parquet"),
        clusters=shard_outputs("clusters.parquet"),
        core=core_outputs,
        power=rules.check_power.output.power,
        settings=variant_settings,
    output:
        neurons=report(
            f"{VARIANT_DIR}/neurons.parquet",
            caption="../report/neurons.rst",
            category="Tables",
            subcategory="{model} / {variant}",
        ),
        layers=report(
            f"{VARIANT_DIR}/layers.parquet",
            caption="../report/layers.rst",
            category="Tables",
            subcategory="{model} / {variant}",
        ),
        claims=report(
            f"{VARIANT_DIR}/claims.parquet",
            caption="../report/claims.rst",
            category="Tables",
            subcategory="{model} / {variant}",
        ),
        criteria=report(
            f"{VARIANT_DIR}/criteria.parquet",
            caption="../report/criteria.rst",
            category="Tables",
            subcategory="{model} / {variant}",
        ),
        contrasts=f"{VARIANT_DIR}/tables/contrasts.parquet",
        tokens=f"{VARIANT_DIR}/tables/tokens.parquet",
        segments=f"{VARIANT_DIR}/tables/segments.parquet",
        clusters=f"{VARIANT_DIR}/tables/clusters.parquet",
    params:
        analysis=variant_setting("analysis"),
    log:
        f"{LOGS}/{{model}}/{{variant}}/merge.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/{{variant}}/merge.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/merge.py"
