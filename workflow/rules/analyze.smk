rule core_tokens:
    input:
        stats=RESULTS + "/activations/L{layer}.h5",
        tokens=rules.prepare_corpus.output.tokens,
    output:
        core=SHARD_DIR + "/core_tokens.h5",
    params:
        core_tokens=config["core_tokens"],
        bounds=shard_bounds,
        model=MODEL,
    group:
        "shard"
    log:
        "logs/core_tokens/L{layer}_B{block}.log",
    benchmark:
        RESULTS + "/benchmarks/core_tokens/L{layer}_B{block}.tsv"
    conda:
        "../envs/intraneuron.yaml"
    script:
        "../scripts/core_tokens.py"


rule analyze:
    input:
        core=rules.core_tokens.output.core,
        embeddings=RESULTS + f"/embeddings/{config['analysis']['proxy']}.h5",
    output:
        neurons=SHARD_DIR + "/neurons.parquet",
        tokens=SHARD_DIR + "/tokens.parquet",
        segments=SHARD_DIR + "/segments.parquet",
        clusters=SHARD_DIR + "/clusters.parquet",
    params:
        analysis=config["analysis"],
    group:
        "shard"
    log:
        "logs/analyze/L{layer}_B{block}.log",
    benchmark:
        RESULTS + "/benchmarks/analyze/L{layer}_B{block}.tsv"
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
            RESULTS + "/neurons.parquet",
            caption="../report/neurons.rst",
            category="Tables",
        ),
        layers=report(
            RESULTS + "/layers.parquet",
            caption="../report/layers.rst",
            category="Tables",
        ),
        claims=report(
            RESULTS + "/claims.parquet",
            caption="../report/claims.rst",
            category="Tables",
        ),
        tokens=RESULTS + "/tables/tokens.parquet",
        segments=RESULTS + "/tables/segments.parquet",
        clusters=RESULTS + "/tables/clusters.parquet",
    params:
        analysis=config["analysis"],
    log:
        "logs/merge.log",
    benchmark:
        RESULTS + "/benchmarks/merge.tsv"
    conda:
        "../envs/intraneuron.yaml"
    script:
        "../scripts/merge.py"
