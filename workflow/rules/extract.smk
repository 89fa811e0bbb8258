rule extract:
    input:
        tokens=rules.prepare_corpus.output.tokens,
        model=MODEL_FILES + MODEL_CHECKPOINT,
    output:
        stats=f"{RESULTS}/activations/chunks/{{scatteritem}}.h5",
    params:
        extraction=EXTRACTION,
        device=config["model"]["device"],
        batch_tokens=config["extract"]["batch_tokens"],
    # The forward pass uses every core it is given (Snakemake caps BLAS/OpenMP threads at this).
    threads: workflow.cores
    log:
        f"{LOGS}/extract/{{scatteritem}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/extract/{{scatteritem}}.tsv"
    conda:
        "../envs/intraneuron.yaml"
    script:
        "../scripts/extract.py"


rule reduce_chunks:
    input:
        chunks=gather.extract(f"{RESULTS}/activations/chunks/{{scatteritem}}.h5"),
    output:
        stats=f"{RESULTS}/activations/L{{layer}}.h5",
    log:
        f"{LOGS}/reduce/L{{layer}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/reduce/L{{layer}}.tsv"
    conda:
        "../envs/intraneuron.yaml"
    script:
        "../scripts/reduce_chunks.py"


rule embeddings:
    input:
        model=MODEL_FILES + MODEL_CHECKPOINT,
    output:
        matrix=f"{RESULTS}/embeddings/{{proxy}}.h5",
    params:
        model=MODEL,
        sentence_model=config["analysis"]["sentence_model"],
        wordnet_dir=config["analysis"]["wordnet_dir"],
    log:
        f"{LOGS}/embeddings/{{proxy}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embeddings/{{proxy}}.tsv"
    conda:
        "../envs/intraneuron.yaml"
    script:
        "../scripts/embeddings.py"
