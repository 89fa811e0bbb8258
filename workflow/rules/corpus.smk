rule prepare_corpus:
    input:
        corpus=corpus_inputs,
        model=model_inputs,
    output:
        tokens=f"{MODEL_DIR}/corpus/tokens.parquet",
    params:
        corpus=model_setting("corpus"),
        model=model_identity,
    log:
        f"{LOGS}/{{model}}/prepare_corpus.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/prepare_corpus.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/prepare_corpus.py"
