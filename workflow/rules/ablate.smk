# Ablation of a sample of each layer's neurons, measured on the next layer. Only layers below a
# model's last analysed layer are ablated (the last has no next layer in the run); the sample,
# its top and lower segments and the proxy come from the model's base variant.
ablation_settings = settings_file(
    f"{MODEL_SETTINGS}/ablation.json",
    model=model_identity,
    dtype=model_setting("model", "dtype"),
    device=model_setting("model", "device"),
    batch_tokens=model_setting("extract", "batch_tokens"),
    ablation=ablation_run,
    proxy=lambda wildcards: proxy_of(wildcards.model, BASE_VARIANT),
    plan=shard_plan,
)
verdict_settings = settings_file(
    f"{MODEL_SETTINGS}/ablation-verdict.json", ablation=model_setting("ablation")
)


rule ablate:
    input:
        tokens=rules.prepare_corpus.output.tokens,
        core=f"{MODEL_DIR}/variants/{BASE_VARIANT}/tables/tokens.parquet",
        neurons=f"{MODEL_DIR}/variants/{BASE_VARIANT}/neurons.parquet",
        embeddings=base_proxy_file,
        model=model_inputs,
        settings=ablation_settings,
    output:
        table=f"{MODEL_DIR}/ablation/L{{layer}}/P{{part}}.parquet",
    params:
        model=model_identity,
        dtype=model_setting("model", "dtype"),
        device=model_setting("model", "device"),
        batch_tokens=model_setting("extract", "batch_tokens"),
        ablation=ablation_run,
    threads: model_threads
    log:
        f"{LOGS}/{{model}}/ablate/L{{layer}}_P{{part}}.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/ablate/L{{layer}}_P{{part}}.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/ablate.py"


rule merge_ablation:
    input:
        parts=ablation_parts,
        settings=verdict_settings,
    output:
        ablation=report(
            f"{MODEL_DIR}/ablation.parquet",
            caption="../report/ablation.rst",
            category="Tables",
            subcategory="{model}",
        ),
        layers=f"{MODEL_DIR}/ablation_layers.parquet",
    params:
        ablation=model_setting("ablation"),
    log:
        f"{LOGS}/{{model}}/merge_ablation.log",
    benchmark:
        f"{BENCHMARKS}/{{model}}/merge_ablation.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/merge_ablation.py"
