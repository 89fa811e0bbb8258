rule prepare_corpus:
    input:
        corpus=corpus_inputs,
        model=MODEL_FILES + MODEL_CHECKPOINT,
    output:
        tokens=f"{RESULTS}/corpus/tokens.parquet",
    params:
        corpus=config["corpus"],
        model=MODEL,
    log:
        f"{LOGS}/prepare_corpus.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_corpus.tsv"
    conda:
        "../envs/intraneuron.yaml"
    script:
        "../scripts/prepare_corpus.py"
