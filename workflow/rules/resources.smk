# Checkpoints derived once from files the config names, kept below the working directory in
# resources/models/ (shared by every results directory and config that names the same file).
# A `gguf:` model.id (intraneuron.convert) is converted into an ordinary safetensors checkpoint
# here; MODEL_CHECKPOINT is what the rules that load the model take as input, so the DAG runs
# the conversion first, once.
import re

from intraneuron.convert import checkpoint_dir, is_gguf_id

GGUF_MODELS = {
    checkpoint_dir(model_id).name: model_id
    for model_id in [config["model"]["id"]]
    if is_gguf_id(model_id)
}
MODEL_CHECKPOINT = [str(checkpoint_dir(m)) for m in GGUF_MODELS.values()]


rule convert_gguf:
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
        "../envs/intraneuron.yaml"
    script:
        "../scripts/convert_gguf.py"
