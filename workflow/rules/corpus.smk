rule prepare_corpus:
    input:
        model=MODEL_CHECKPOINT,
    output:
        tokens=f"{RESULTS}/corpus/tokens.parquet",
    params:
        corpus=config["corpus"],
        model=MODEL,
    log:
        "logs/prepare_corpus.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_corpus.tsv"
    conda:
        "../envs/intraneuron.yaml"
    script:
        "../scripts/prepare_corpus.py"
