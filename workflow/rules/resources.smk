# Checkpoints derived once from files the config names, kept below the working directory in
# resources/models/ (shared by every results directory and config that names the same file).
# A `gguf:` model.id (intraneuron.convert) is converted into an ordinary safetensors checkpoint
# here; model_checkpoint(wildcards) is what the rules that load a model take as input, so the
# DAG runs the conversion first, once.

GGUF_MODELS = {
    checkpoint_dir(cfg["model"]["id"]).name: cfg["model"]["id"]
    for cfg in MODELS.values()
    if is_gguf_id(cfg["model"]["id"])
}


rule convert_gguf:
    input:
        gguf=gguf_file,
        settings=settings_file(
            "resources/settings/convert_gguf/{name}.json",
            source=lambda wildcards: GGUF_MODELS[wildcards.name],
            file=gguf_file,
        ),
    output:
        checkpoint=directory("resources/models/{name}"),
    params:
        source=lambda wildcards: GGUF_MODELS[wildcards.name],
    wildcard_constraints:
        name="|".join(map(re.escape, GGUF_MODELS)) or "(?!)",
    resources:
        mem_mb=4000,
    log:
        "logs/convert_gguf/{name}.log",
    benchmark:
        "resources/benchmarks/convert_gguf/{name}.tsv"
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/convert_gguf.py"
