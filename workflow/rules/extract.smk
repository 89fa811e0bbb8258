# Extraction's settings, shared by its chunks and their reduction (which reads `chunks` files).
extract_settings = settings_file(
    f"{MODEL_SETTINGS}/extract.json",
    extraction=extraction_settings,
    device=model_setting("model", "device"),
    batch_tokens=model_setting("extract", "batch_tokens"),
    chunks=config["extract"]["chunks"],
)


rule extract:
    input:
        tokens=rules.prepare_corpus.output.tokens,
        model=model_inputs,
        settings=extract_settings,
    output:
        stats=f"{MODEL_DIR}/activations/chunks/{{scatteritem}}.h5",
    params:
        extraction=extraction_settings,
        device=model_setting("model", "device"),
        batch_tokens=model_setting("extract", "batch_tokens"),
    # Every model's forward pass first: a model extracted last would leave its whole chain of
    # single-core jobs (core tokens, analysis, ablation, report) to run alone at the end.
    priority: 1
    # model.threads, else every core (Snakemake caps BLAS/OpenMP threads at this).
    threads: model_threads
    log:
        f"{LOGS}/{{model}}/extract/{{scatteritem}}.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/extract/{{scatteritem}}.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/extract.py"


rule reduce_chunks:
    input:
        chunks=extract_chunks,
        settings=extract_settings,
    output:
        stats=f"{MODEL_DIR}/activations/L{{layer}}.h5",
    log:
        f"{LOGS}/{{model}}/reduce/L{{layer}}.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/reduce/L{{layer}}.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/reduce_chunks.py"


rule embeddings:
    input:
        model=model_inputs,
        settings=settings_file(
            f"{MODEL_SETTINGS}/embeddings-{{proxy}}.json",
            model=model_identity,
            proxy=proxy_settings,
        ),
        categories=proxy_categories,
    output:
        matrix=f"{MODEL_DIR}/embeddings/{{proxy}}.h5",
    params:
        model=model_identity,
        proxy=proxy_settings,
    log:
        f"{LOGS}/{{model}}/embeddings/{{proxy}}.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/embeddings/{{proxy}}.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/embeddings.py"
