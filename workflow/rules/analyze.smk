rule core_tokens:
    input:
        stats=f"{RESULTS}/activations/L{{layer}}.h5",
        tokens=rules.prepare_corpus.output.tokens,
        model=MODEL_FILES + MODEL_CHECKPOINT,
    output:
        core=f"{SHARD_DIR}/core_tokens.h5",
    params:
        core_tokens=config["core_tokens"],
        bounds=shard_bounds,
        model=MODEL,
    group:
        "shard"
    log:
        f"{LOGS}/core_tokens/L{{layer}}_B{{block}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/core_tokens/L{{layer}}_B{{block}}.tsv"
    conda:
        "../envs/intraneuron.yaml"
    script:
        "../scripts/core_tokens.py"


rule analyze:
    input:
        core=rules.core_tokens.output.core,
        embeddings=f"{RESULTS}/embeddings/{config['analysis']['proxy']}.h5",
    output:
        neurons=f"{SHARD_DIR}/neurons.parquet",
        tokens=f"{SHARD_DIR}/tokens.parquet",
        segments=f"{SHARD_DIR}/segments.parquet",
        clusters=f"{SHARD_DIR}/clusters.parquet",
    params:
        analysis=config["analysis"],
    group:
        "shard"
    log:
        f"{LOGS}/analyze/L{{layer}}_B{{block}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/analyze/L{{layer}}_B{{block}}.tsv"
    conda:
        "../envs/intraneuron.yaml"
    script:
        "../scripts/analyze.py"


rule merge:
    input:
        neurons=shard_outputs("neurons.parquet"),
        tokens=shard_outputs("tokens.parquet"),
        segments=shard_outputs("segments.parquet"),
        clusters=shard_outputs("clusters.parquet"),
        core=shard_outputs("core_tokens.h5"),
    output:
        neurons=report(
            f"{RESULTS}/neurons.parquet",
            caption="../report/neurons.rst",
            category="Tables",
        ),
        layers=report(
            f"{RESULTS}/layers.parquet",
            caption="../report/layers.rst",
            category="Tables",
        ),
        claims=report(
            f"{RESULTS}/claims.parquet",
            caption="../report/claims.rst",
            category="Tables",
        ),
        criteria=report(
            f"{RESULTS}/criteria.parquet",
            caption="../report/criteria.rst",
            category="Tables",
        ),
        contrasts=f"{RESULTS}/tables/contrasts.parquet",
        tokens=f"{RESULTS}/tables/tokens.parquet",
        segments=f"{RESULTS}/tables/segments.parquet",
        clusters=f"{RESULTS}/tables/clusters.parquet",
    params:
        analysis=config["analysis"],
    log:
        f"{LOGS}/merge.log",
    benchmark:
        f"{RESULTS}/benchmarks/merge.tsv"
    conda:
        "../envs/intraneuron.yaml"
    script:
        "../scripts/merge.py"
